//! `render_report`: the session's report, written by the node that holds
//! its ref from the ref alone (events, per-turn diffs, artifacts), so the
//! panel, the API and `cortex session report` get the same file.

use super::{Answer, Host, session_place, store_failed};
use crate::evidence::report::{self, Header};
use crate::protocol::reply::ReportRendered;
use crate::protocol::{ReportFormat, SessionId};

pub(super) fn render(host: &dyn Host, session_id: &SessionId, format: ReportFormat) -> Answer {
    let (store, _) = session_place(host, session_id)?;
    let view = store.read_session(session_id).map_err(store_failed)?;
    let events = store.events_after(&view, 0).map_err(store_failed)?;
    let meta = &view.meta;
    let header = Header {
        id: meta.id.to_string(),
        title: meta.title.clone(),
        provider: meta.provider.clone(),
        state: meta.state.to_string(),
        created_at: meta.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        tokens: meta.usage_total.map(|usage| usage.total_tokens),
        cost_usd: meta.cost_usd_total,
    };
    let built = report::build(
        header,
        &events,
        &mut |turn| store.turn_files(&view, turn).ok().and_then(|files| files.diff),
        &mut |stored| store.session_file(session_id, stored).ok(),
    );
    let content = match format {
        ReportFormat::Html => built.html(),
        ReportFormat::Md => built.markdown(),
    };
    let file_name = format!("cortex-{session_id}.{}", format.extension());
    Ok(ReportRendered { session_id: session_id.clone(), format, file_name, content }.into())
}
