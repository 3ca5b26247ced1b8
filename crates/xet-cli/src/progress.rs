//! Progress bars of `xet upload` and `xet download`: one overall bar and, when a
//! session has several files, a bar per file in flight, drawn from the sessions'
//! [`ProgressUpdate`]s. Nothing at all is drawn when stderr is not a terminal.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use xet_transfer::progress::{ProgressSink, ProgressUpdate};

/// Per-file bars shown at once. More files in flight (many small downloads) get a
/// bar when one of these finishes; the overall bar counts them all along.
const MAX_FILE_BARS: usize = 4;

/// Columns of a file name on its bar; longer names keep their end.
const NAME_WIDTH: usize = 32;

/// The bars of one session, or nothing when stderr is not a terminal.
pub struct Bars {
    inner: Option<Drawn>,
}

struct Drawn {
    multi: MultiProgress,
    overall: ProgressBar,
    /// "uploading" or "downloading".
    verb: &'static str,
    /// Files the session will handle (known to the command up front).
    files: usize,
    /// Bytes in all, when the command knew them up front: then the sessions'
    /// running totals (a download's grow file by file) do not move the bar's end.
    total: Option<u64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// File index -> (name, bar), for the files that have a bar now.
    bars: BTreeMap<usize, (String, ProgressBar)>,
    /// Files seen complete; their late or repeated reports are ignored.
    done: HashSet<usize>,
    /// Names of the files complete, counted on the overall bar. By name because
    /// the command reports files by name (an empty upload sends no report at all).
    done_names: HashSet<String>,
    transferred: u64,
    deduped: u64,
}

impl Bars {
    /// Bars for a session over `files` files of `total` bytes in all (when known),
    /// drawn on stderr if it is a terminal.
    pub fn new(verb: &'static str, files: usize, total: Option<u64>) -> Arc<Bars> {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Bars::drawn_on(ProgressDrawTarget::stderr(), verb, files, total)
        } else {
            Arc::new(Bars { inner: None })
        }
    }

    /// Bars drawn on `target` (tests: [`ProgressDrawTarget::hidden`]).
    fn drawn_on(
        target: ProgressDrawTarget,
        verb: &'static str,
        files: usize,
        total: Option<u64>,
    ) -> Arc<Bars> {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total.unwrap_or(0)));
        overall.set_style(style(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ));
        let d = Drawn {
            multi,
            overall,
            verb,
            files,
            total,
            state: Mutex::new(State::default()),
        };
        d.overall.set_message(d.message(&State::default()));
        Arc::new(Bars { inner: Some(d) })
    }

    /// Marks the file called `name` complete, whatever its last report said (a file
    /// that shrank while being read never reaches its size).
    pub fn file_finished(&self, name: &str) {
        let Some(d) = &self.inner else { return };
        let mut st = d.state.lock().unwrap_or_else(|p| p.into_inner());
        let index = st.bars.iter().find(|(_, (n, _))| n == name).map(|(i, _)| *i);
        d.complete(&mut st, index, name);
    }

    /// Removes every bar.
    pub fn finish(&self) {
        let Some(d) = &self.inner else { return };
        let mut st = d.state.lock().unwrap_or_else(|p| p.into_inner());
        for (_, (_, bar)) in std::mem::take(&mut st.bars) {
            bar.finish_and_clear();
            d.multi.remove(&bar);
        }
        d.overall.finish_and_clear();
    }
}

impl Drawn {
    /// The overall bar's message: the verb, files done when there are several, and
    /// what was sent (upload) or deduplicated.
    fn message(&self, st: &State) -> String {
        let mut m = self.verb.to_string();
        if self.files > 1 {
            m += &format!(" {}/{} files", st.done_names.len().min(self.files), self.files);
        }
        if st.deduped > 0 {
            m += &format!(
                ", sent {} MiB, deduped {} MiB",
                st.transferred >> 20,
                st.deduped >> 20
            );
        }
        m
    }

    fn complete(&self, st: &mut State, index: Option<usize>, name: &str) {
        if let Some(i) = index {
            st.done.insert(i);
            if let Some((_, bar)) = st.bars.remove(&i) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        if st.done_names.insert(name.to_string()) {
            self.overall.set_message(self.message(st));
        }
    }

    fn file(&self, index: usize, name: &str, processed: u64, total: Option<u64>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.done.contains(&index) {
            return;
        }
        if total.is_some_and(|t| processed >= t) {
            self.complete(&mut st, Some(index), name);
            return;
        }
        // One file: the overall bar is its bar.
        if self.files <= 1 {
            return;
        }
        if let Some((_, bar)) = st.bars.get(&index) {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(processed);
            return;
        }
        if st.bars.len() >= MAX_FILE_BARS {
            return; // it gets a bar at a later report, once one is free
        }
        let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        bar.set_style(style("  {msg} [{bar:30}] {bytes}/{total_bytes}"));
        bar.set_message(short_name(name, NAME_WIDTH));
        bar.set_position(processed);
        st.bars.insert(index, (name.to_string(), bar));
    }

    fn total(&self, processed: u64, total: Option<u64>, transferred: u64, deduped: u64) {
        if let Some(t) = self.total.or(total) {
            self.overall.set_length(t);
        }
        self.overall.set_position(processed);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.transferred, st.deduped) = (transferred, deduped);
        self.overall.set_message(self.message(&st));
    }
}

impl ProgressSink for Bars {
    fn update(&self, update: ProgressUpdate) {
        let Some(d) = &self.inner else { return };
        match update {
            ProgressUpdate::File {
                index,
                name,
                processed,
                total,
                ..
            } => d.file(index, &name, processed, total),
            ProgressUpdate::Total {
                processed,
                total,
                transferred,
                deduped,
            } => d.total(processed, total, transferred, deduped),
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `name` padded or cut to `width` characters, keeping its end (the file name).
fn short_name(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width {
        return format!("{name:<width$}");
    }
    let tail: String = name.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(files: usize, total: u64) -> Arc<Bars> {
        Bars::drawn_on(ProgressDrawTarget::hidden(), "uploading", files, Some(total))
    }

    fn file(index: usize, processed: u64, total: u64) -> ProgressUpdate {
        ProgressUpdate::File {
            index,
            name: format!("dir/file-{index}"),
            processed,
            total: Some(total),
            deduped: 0,
            transferred: 0,
        }
    }

    /// File indices that have a bar, and each bar's (position, length).
    fn visible(b: &Bars) -> Vec<(usize, u64, Option<u64>)> {
        let d = b.inner.as_ref().unwrap();
        let st = d.state.lock().unwrap();
        st.bars
            .iter()
            .map(|(i, (_, bar))| (*i, bar.position(), bar.length()))
            .collect()
    }

    #[test]
    fn one_bar_per_file_in_flight_removed_when_done() {
        let b = hidden(3, 300);
        b.update(file(0, 10, 100));
        b.update(file(1, 0, 100));
        assert_eq!(visible(&b), vec![(0, 10, Some(100)), (1, 0, Some(100))]);
        b.update(file(0, 60, 100));
        assert_eq!(visible(&b)[0], (0, 60, Some(100)));
        b.update(file(0, 100, 100));
        assert_eq!(visible(&b), vec![(1, 0, Some(100))]);
        // A late report of a finished file brings no bar back.
        b.update(file(0, 90, 100));
        assert_eq!(visible(&b), vec![(1, 0, Some(100))]);
        b.update(file(2, 5, 100));
        b.update(file(1, 100, 100));
        assert_eq!(visible(&b), vec![(2, 5, Some(100))]);
        let d = b.inner.as_ref().unwrap();
        assert_eq!(d.overall.message(), "uploading 2/3 files");
        // The command's own "finished" for a file already complete changes nothing.
        b.file_finished("dir/file-0");
        assert_eq!(d.overall.message(), "uploading 2/3 files");
        b.finish();
        assert!(visible(&b).is_empty());
    }

    #[test]
    fn at_most_a_handful_of_file_bars() {
        let n = MAX_FILE_BARS + 3;
        let b = hidden(n, 100 * n as u64);
        for i in 0..n {
            b.update(file(i, 1, 100));
        }
        let shown: Vec<usize> = visible(&b).iter().map(|v| v.0).collect();
        assert_eq!(shown, (0..MAX_FILE_BARS).collect::<Vec<_>>());
        // A slot frees up: the next report of a waiting file takes it.
        b.update(file(1, 100, 100));
        b.update(file(MAX_FILE_BARS + 2, 50, 100));
        let shown: Vec<usize> = visible(&b).iter().map(|v| v.0).collect();
        let mut want: Vec<usize> = (0..MAX_FILE_BARS).filter(|&i| i != 1).collect();
        want.push(MAX_FILE_BARS + 2);
        assert_eq!(shown, want);
    }

    #[test]
    fn single_file_uses_only_the_overall_bar() {
        let b = hidden(1, 100);
        b.update(file(0, 10, 100));
        b.update(ProgressUpdate::Total {
            processed: 10,
            total: None,
            transferred: 0,
            deduped: 0,
        });
        assert!(visible(&b).is_empty());
        let d = b.inner.as_ref().unwrap();
        assert_eq!((d.overall.position(), d.overall.length()), (10, Some(100)));
        assert_eq!(d.overall.message(), "uploading");
    }

    #[test]
    fn totals_move_the_overall_bar() {
        let b = Bars::drawn_on(ProgressDrawTarget::hidden(), "uploading", 2, None);
        b.update(ProgressUpdate::Total {
            processed: 3 << 20,
            total: Some(8 << 20),
            transferred: 1 << 20,
            deduped: 2 << 20,
        });
        let d = b.inner.as_ref().unwrap();
        assert_eq!(
            (d.overall.position(), d.overall.length()),
            (3 << 20, Some(8 << 20))
        );
        assert_eq!(
            d.overall.message(),
            "uploading 0/2 files, sent 1 MiB, deduped 2 MiB"
        );
        // A total known up front stays.
        let b = hidden(2, 10 << 20);
        b.update(ProgressUpdate::Total {
            processed: 1,
            total: Some(8 << 20),
            transferred: 0,
            deduped: 0,
        });
        let d = b.inner.as_ref().unwrap();
        assert_eq!(d.overall.length(), Some(10 << 20));
    }

    #[test]
    fn file_finished_by_name_removes_a_stuck_bar() {
        let b = hidden(2, 200);
        // The file shrank while read: it never reaches its size.
        b.update(file(0, 40, 100));
        b.file_finished("dir/file-0");
        assert!(visible(&b).is_empty());
        b.update(file(0, 40, 100));
        assert!(visible(&b).is_empty());
        // A file that never reported (empty) counts once its task is done.
        b.file_finished("dir/empty");
        let d = b.inner.as_ref().unwrap();
        assert_eq!(d.overall.message(), "uploading 2/2 files");
    }

    #[test]
    fn names_keep_their_end() {
        assert_eq!(short_name("a.bin", 8), "a.bin   ");
        assert_eq!(short_name("some/long/path/x.bin", 8), "…h/x.bin");
        assert_eq!(short_name("some/long/path/x.bin", 8).chars().count(), 8);
    }
}
