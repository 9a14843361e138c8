//! One background job of the window's — a grid export, a loss curve, an ensemble, a folder evaluation — as every
//! panel and dialog tracks it: the request id, how far it is, and what the worker's answers mean for it. The one
//! place that knows that a failure with its id ends it and that a restarted worker has dropped every job (the
//! Dataset panel's own copy forgot the latter, and its export button stayed disabled after a restart).

use crate::window::session::Session;
use crate::worker::{Request, Response};

/// A job in flight, or none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    running: Option<Running>,
}

#[derive(Clone, Debug, PartialEq)]
struct Running {
    id: u64,
    /// (done, total) forward passes or rows.
    progress: (usize, usize),
}

/// What a worker response meant for the job.
#[derive(Debug)]
pub enum JobUpdate<'r> {
    /// Not about this job (or no job is running).
    Unrelated,
    /// It has come further (see [`Job::progress`]).
    Progressed,
    /// A response with the job's id that is neither progress nor failure: its result, or a part of it; the job
    /// runs on until [`Job::finish`].
    Answered(&'r Response),
    /// It failed, saying why; the job has ended.
    Failed(&'r str),
    /// The worker restarted and dropped it; the job has ended.
    Lost,
}

impl Job {
    /// Sends the request `make` builds (with its new id) and tracks it, `total` steps to go.
    pub fn start(&mut self, session: &mut Session, total: usize, make: impl FnOnce(u64) -> Request) {
        let id = session.forwards.request(make);
        self.running = Some(Running { id, progress: (0, total) });
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// How far the job is, while it runs.
    pub fn progress(&self) -> Option<(usize, usize)> {
        self.running.as_ref().map(|running| running.progress)
    }

    /// The job has its result: nothing more is expected for it.
    pub fn finish(&mut self) {
        self.running = None;
    }

    /// Asks the worker to stop the job (a background job; an export already computing finishes) and forgets it.
    pub fn cancel(&mut self, session: &mut Session) {
        if let Some(Running { id, .. }) = self.running.take() {
            session.forwards.request(|_| Request::Cancel { id });
        }
    }

    /// Forgets the job without asking the worker anything (a new model: the worker dropped it already).
    pub fn forget(&mut self) {
        self.running = None;
    }

    /// Takes in a worker response: progress is recorded; a failure with the job's id or a worker restart ends it.
    pub fn on_response<'r>(&mut self, response: &'r Response) -> JobUpdate<'r> {
        let Some(running) = self.running.as_mut() else { return JobUpdate::Unrelated };
        match response {
            Response::Restarted { .. } => {
                self.running = None;
                JobUpdate::Lost
            }
            Response::Progress { id, done, total } if *id == running.id => {
                running.progress = (*done, *total);
                JobUpdate::Progressed
            }
            Response::Failed { id, error } if *id == running.id => {
                self.running = None;
                JobUpdate::Failed(error)
            }
            other if other.request_id() == Some(running.id) => JobUpdate::Answered(other),
            _ => JobUpdate::Unrelated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(id: u64) -> Job {
        Job { running: Some(Running { id, progress: (0, 3) }) }
    }

    #[test]
    fn progress_answers_failures_and_restarts_of_its_own_id() {
        let mut job = running(7);
        assert!(matches!(job.on_response(&Response::Progress { id: 8, done: 1, total: 3 }), JobUpdate::Unrelated));
        assert!(matches!(job.on_response(&Response::Progress { id: 7, done: 2, total: 3 }), JobUpdate::Progressed));
        assert_eq!(job.progress(), Some((2, 3)));
        let exported = Response::Exported { id: 7, path: "grid.png".into() };
        assert!(matches!(job.on_response(&exported), JobUpdate::Answered(Response::Exported { id: 7, .. })));
        assert!(job.is_running(), "the caller decides when an answer finishes it");
        job.finish();
        assert!(!job.is_running());
        let mut job = running(7);
        let failed = Response::Failed { id: 7, error: "disk full".into() };
        assert!(matches!(job.on_response(&failed), JobUpdate::Failed("disk full")));
        assert!(!job.is_running());
        let mut job = running(7);
        let restarted = Response::Restarted { message: "the worker crashed".into() };
        assert!(matches!(job.on_response(&restarted), JobUpdate::Lost));
        assert!(!job.is_running());
        assert!(matches!(Job::default().on_response(&failed), JobUpdate::Unrelated));
    }
}
