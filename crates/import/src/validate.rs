//! havip's own reader on each draft, before anything is written: a config havip would
//! refuse is an error of the import, placed at the source line of the value it refuses. So
//! `havip import` never writes a config that `havip check` rejects without saying why, and
//! havip's rules (ranges, required keys, names used twice) live in one place, its reader.

use std::path::Path;
use std::sync::Arc;

use havip_config::place::Place;

use crate::emit::emit_placed;
use crate::model::Draft;
use crate::Report;

/// The name the draft is read under; it appears in nothing the user sees.
const DRAFT: &str = "draft.toml";

/// Report, as errors, everything havip's reader refuses in `draft`.
pub fn refusals(draft: &Draft, report: &mut Report) {
    let placed = emit_placed(draft, &[]);
    let Err(problems) = havip_config::parse(Path::new(DRAFT), &placed.text) else {
        return;
    };
    for problem in problems {
        let line = usize::try_from(problem.place.line).ok();
        let what = format!("{}: {}", problem.place.key, problem.message);
        // A problem on a comment, blank or closing line is about the value or table above.
        let place = line
            .and_then(|line| placed.places.get(..line))
            .and_then(|before| before.iter().rev().find_map(Option::as_ref))
            .cloned()
            .unwrap_or_else(|| first_input(draft));
        report.error(&place, format!("havip refuses the imported config: {what}"));
    }
}

/// The start of the first input: where a problem with the whole file is reported.
fn first_input(draft: &Draft) -> Place {
    let file = draft.inputs.first().map_or("(no input)", String::as_str);
    Place::new(&Arc::from(file), 1, 1, "import")
}
