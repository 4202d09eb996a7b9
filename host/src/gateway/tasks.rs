//! Tasks (the 2026-07-28 `io.modelcontextprotocol/tasks` extension, SEP-2663) for long-running tools. A call of a
//! tool the plugin declares long-running (in its manifest) or the operator marked so (`plughost limits ID --tool T
//! --long-running`; `--long-running false` overrides the plugin), from a client that declares
//! the extension on the request, is answered at once with a task handle (`resultType: "task"`); the call runs on, and
//! the client polls `tasks/get` until the task is `completed` (the `CallToolResult` inlined), `failed` (a JSON-RPC
//! error) or `cancelled`. `tasks/cancel` stops the guest through the same path as `notifications/cancelled` (the
//! call's cancellation token, then the epoch), and the ledger records the call as `cancelled`.
//!
//! rmcp provides the wire types and the dispatch (including the check that the client declared the extension); the
//! store is this module's rather than rmcp's `TaskManager`, because a task here belongs to a principal and is
//! bounded:
//! - **Owned**: a task is visible only to the principal that created it (a scoped token's name, an OAuth subject;
//!   everyone alike on a gateway without authentication). Another principal asking for it is told it does not
//!   exist. Ids are 128 random bits.
//! - **Survives reconnects**: the store belongs to the server, not to a connection or session, so a new connection
//!   of the same principal polls the same task.
//! - **Bounded**: at most `per_principal` tasks per principal (the oldest finished one makes room; when all are
//!   running a new one is refused), at most [`MAX_TASKS`] in all, a result of at most `max_result_bytes`
//!   (a bigger one fails the task, saying so), and each task expires `ttlMs` after it was created: the tool's
//!   deadline plus `retention`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResult, CreateTaskResult, DetailedTask, ErrorCode, GetTaskResult, Task, TaskPayload,
    TaskStatus,
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::index::ToolIndex;

/// Most tasks kept at once, whoever owns them.
pub const MAX_TASKS: usize = 10_000;

/// How a task's work ended: its result, stopped by `tasks/cancel` (or expiry) before it finished, or a JSON-RPC
/// error.
pub type Outcome = Result<Option<CallToolResult>, ErrorData>;

/// How many tasks, how big and for how long.
#[derive(Debug, Clone, Copy)]
pub struct TaskLimits {
    /// Tasks one principal may hold (running or finished and not expired).
    pub per_principal: usize,
    /// Largest result a task keeps (its JSON, bytes).
    pub max_result_bytes: usize,
    /// How long a task is kept after the tool's deadline.
    pub retention: Duration,
    /// The polling interval suggested to clients.
    pub poll_interval: Duration,
}

impl Default for TaskLimits {
    fn default() -> Self {
        TaskLimits {
            per_principal: 32,
            max_result_bytes: 4 << 20,
            retention: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Entry {
    owner: Option<Arc<str>>,
    task: Task,
    created: Instant,
    expires: Instant,
    /// The terminal payload, once settled.
    done: Option<TaskPayload>,
    cancel: CancellationToken,
}

/// The tasks of one gateway server (every connection and session of it).
#[derive(Debug, Default)]
pub struct Tasks {
    limits: TaskLimits,
    entries: Mutex<HashMap<String, Entry>>,
}

/// The deadline of `name` when it is long-running, else `None` (the call is answered in line). The operator's
/// setting (`plughost limits ID --tool T --long-running true|false`) wins; without one, what the plugin declares.
pub fn long_running(index: &ToolIndex, name: &str) -> Option<Duration> {
    let t = index.tools.get(name)?;
    let limits = &t.entry.record.limits;
    let on = if limits.long_running.contains(&t.tool) {
        true
    } else if limits.not_long_running.contains(&t.tool) {
        false
    } else {
        t.info.long_running
    };
    on.then_some(t.entry.plugin.limits.timeout)
}

fn unknown(id: &str) -> ErrorData {
    let mut shown = id.to_string();
    crate::caps::view::truncate_str(&mut shown, 128);
    ErrorData::invalid_params(
        format!(
            "unknown task `{shown}` (it never existed, expired, or belongs to another principal)"
        ),
        Some(json!({ "taskId": shown })),
    )
}

fn stamp() -> String {
    crate::units::rfc3339_ms(crate::ledger::now_ms())
}

impl Tasks {
    pub fn new(limits: TaskLimits) -> Tasks {
        Tasks {
            limits: TaskLimits {
                per_principal: limits.per_principal.max(1),
                ..limits
            },
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops expired tasks, stopping any still running.
    fn sweep(entries: &mut HashMap<String, Entry>, now: Instant) {
        entries.retain(|_, e| {
            let keep = now < e.expires;
            if !keep && e.done.is_none() {
                e.cancel.cancel();
            }
            keep
        });
    }

    /// Creates a task for `owner` whose work is `make(cancel)` (it must stop when `cancel` fires), expected to end
    /// within `run_for`; returns the handle to answer with. The task is in the store before this returns.
    pub fn start<F>(
        self: &Arc<Self>,
        owner: Option<Arc<str>>,
        run_for: Duration,
        make: impl FnOnce(CancellationToken) -> F,
    ) -> Result<CreateTaskResult, ErrorData>
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let id = crate::units::random_hex(16).ok_or_else(|| {
            ErrorData::internal_error("no secure random source for a task id", None)
        })?;
        let now = Instant::now();
        let ttl = run_for.saturating_add(self.limits.retention);
        let at = stamp();
        let task = Task::new(id.clone(), TaskStatus::Working, at.clone(), at)
            .with_ttl_ms(ttl.as_millis() as u64)
            .with_poll_interval_ms(self.limits.poll_interval.as_millis() as u64);
        let cancel = CancellationToken::new();
        {
            let mut entries = self.lock();
            Self::sweep(&mut entries, now);
            let mine: Vec<(&String, &Entry)> =
                entries.iter().filter(|(_, e)| e.owner == owner).collect();
            if mine.len() >= self.limits.per_principal {
                let oldest_done = mine
                    .iter()
                    .filter(|(_, e)| e.done.is_some())
                    .min_by_key(|(_, e)| e.created)
                    .map(|(k, _)| (*k).clone());
                match oldest_done {
                    Some(k) => {
                        entries.remove(&k);
                    }
                    None => {
                        return Err(ErrorData::new(
                            ErrorCode::INTERNAL_ERROR,
                            format!(
                                "too many tasks: {} are running for this principal, the most it may hold; wait \
                                 for one to finish or stop one with tasks/cancel",
                                self.limits.per_principal
                            ),
                            Some(json!({ "kind": "busy", "limit": self.limits.per_principal })),
                        ));
                    }
                }
            }
            if entries.len() >= MAX_TASKS {
                return Err(ErrorData::new(
                    ErrorCode::INTERNAL_ERROR,
                    format!("too many tasks on this gateway ({MAX_TASKS}); try again later"),
                    Some(json!({ "kind": "busy", "limit": MAX_TASKS })),
                ));
            }
            entries.insert(
                id.clone(),
                Entry {
                    owner,
                    task: task.clone(),
                    created: now,
                    expires: now + ttl,
                    done: None,
                    cancel: cancel.clone(),
                },
            );
        }
        let work = make(cancel);
        let weak: Weak<Tasks> = Arc::downgrade(self);
        tokio::spawn(async move {
            let outcome = work.await;
            if let Some(tasks) = weak.upgrade() {
                tasks.settle(&id, outcome);
            }
        });
        Ok(CreateTaskResult::new(task))
    }

    /// Records how the task's work ended.
    fn settle(&self, id: &str, outcome: Outcome) {
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(id) else {
            return;
        };
        let payload = match outcome {
            Ok(None) => TaskPayload::Cancelled,
            Ok(Some(result)) => match serde_json::to_value(&result) {
                Ok(Value::Object(map)) => {
                    let bytes = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
                    if bytes > self.limits.max_result_bytes {
                        TaskPayload::Failed {
                            error: error_object(
                                ErrorCode::INTERNAL_ERROR,
                                format!(
                                    "the result is {bytes} bytes, more than the {} a task keeps",
                                    self.limits.max_result_bytes
                                ),
                                json!({ "kind": "too-large", "bytes": bytes, "limit": self.limits.max_result_bytes }),
                            ),
                        }
                    } else {
                        TaskPayload::Completed { result: map }
                    }
                }
                _ => TaskPayload::Failed {
                    error: error_object(
                        ErrorCode::INTERNAL_ERROR,
                        "the result could not be serialized".into(),
                        Value::Null,
                    ),
                },
            },
            Err(err) => TaskPayload::Failed {
                error: match serde_json::to_value(&err) {
                    Ok(Value::Object(map)) => map,
                    _ => error_object(err.code, err.message.to_string(), Value::Null),
                },
            },
        };
        e.task.status = payload.status();
        e.task.last_updated_at = stamp();
        e.done = Some(payload);
    }

    /// Finds `id` for `owner`: another principal's task is as unknown as one that never existed.
    fn with<T>(
        &self,
        id: &str,
        owner: Option<&str>,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Result<T, ErrorData> {
        let mut entries = self.lock();
        Self::sweep(&mut entries, Instant::now());
        match entries.get_mut(id) {
            Some(e) if e.owner.as_deref() == owner => Ok(f(e)),
            _ => Err(unknown(id)),
        }
    }

    /// `tasks/get`.
    pub fn get(&self, id: &str, owner: Option<&str>) -> Result<GetTaskResult, ErrorData> {
        self.with(id, owner, |e| {
            let payload = e.done.clone().unwrap_or(TaskPayload::Working);
            GetTaskResult::new(DetailedTask::new(e.task.clone(), payload))
        })
    }

    /// `tasks/cancel`: stops the guest (the call's token); the task settles as `cancelled` once it has stopped, or
    /// as whatever it reached if it finished first.
    pub fn cancel(&self, id: &str, owner: Option<&str>) -> Result<(), ErrorData> {
        self.with(id, owner, |e| {
            if e.done.is_none() {
                e.cancel.cancel();
                e.task.status_message = Some("cancellation requested".into());
                e.task.last_updated_at = stamp();
            }
        })
    }

    /// `tasks/update`: no plughost task asks for input, so there is nothing to deliver; known tasks are
    /// acknowledged.
    pub fn update(&self, id: &str, owner: Option<&str>) -> Result<(), ErrorData> {
        self.with(id, owner, |_| ())
    }

    /// Stops every running task (the gateway is shutting down).
    pub fn shutdown(&self) {
        for e in self.lock().values() {
            e.cancel.cancel();
        }
    }
}

fn error_object(code: ErrorCode, message: String, data: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("code".into(), json!(code.0));
    m.insert("message".into(), Value::String(message));
    if !data.is_null() {
        m.insert("data".into(), data);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> CallToolResult {
        CallToolResult::success(vec![rmcp::model::ContentBlock::text("done")])
    }

    async fn settled(tasks: &Tasks, id: &str, owner: Option<&str>) -> GetTaskResult {
        for _ in 0..200 {
            let r = tasks.get(id, owner).expect("known");
            if r.task.status() != TaskStatus::Working {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} did not settle");
    }

    #[tokio::test]
    async fn tasks_are_owned_bounded_and_cancellable() {
        let tasks = Arc::new(Tasks::new(TaskLimits {
            per_principal: 2,
            max_result_bytes: 200,
            ..TaskLimits::default()
        }));
        let alice: Option<Arc<str>> = Some(Arc::from("alice"));
        let a = tasks
            .start(alice.clone(), Duration::from_secs(1), |_| async {
                Ok(Some(ok()))
            })
            .expect("start");
        let id = a.task.task_id.clone();
        assert_eq!(id.len(), 32);
        let done = settled(&tasks, &id, Some("alice")).await;
        assert_eq!(done.task.status(), TaskStatus::Completed);
        assert!(
            tasks.get(&id, Some("bob")).is_err(),
            "bob cannot see alice's task"
        );
        assert!(tasks.get(&id, None).is_err());

        // A running task stops when cancelled.
        let b = tasks
            .start(
                alice.clone(),
                Duration::from_secs(60),
                |cancel| async move {
                    cancel.cancelled().await;
                    Ok(None)
                },
            )
            .expect("start");
        // Two held (one finished): a third evicts the finished one.
        let c = tasks
            .start(
                alice.clone(),
                Duration::from_secs(60),
                |cancel| async move {
                    cancel.cancelled().await;
                    Ok(Some(ok()))
                },
            )
            .expect("the finished task makes room");
        assert!(tasks.get(&id, Some("alice")).is_err(), "evicted");
        let refused = tasks
            .start(alice.clone(), Duration::from_secs(1), |_| async {
                Ok(Some(ok()))
            })
            .expect_err("two running: full");
        assert!(refused.message.contains("too many tasks"), "{refused:?}");
        // Bob has his own allowance.
        assert!(
            tasks
                .start(Some(Arc::from("bob")), Duration::from_secs(1), |_| async {
                    Ok(Some(ok()))
                })
                .is_ok()
        );

        tasks
            .cancel(&b.task.task_id, Some("alice"))
            .expect("cancel");
        let r = settled(&tasks, &b.task.task_id, Some("alice")).await;
        assert_eq!(r.task.status(), TaskStatus::Cancelled);
        // A call that finishes in spite of the cancel is completed, not cancelled.
        tasks
            .cancel(&c.task.task_id, Some("alice"))
            .expect("cancel");
        let r = settled(&tasks, &c.task.task_id, Some("alice")).await;
        assert_eq!(r.task.status(), TaskStatus::Completed);

        // A result bigger than the bound fails the task, saying so.
        let big = tasks
            .start(alice, Duration::from_secs(1), |_| async {
                Ok(Some(CallToolResult::success(vec![
                    rmcp::model::ContentBlock::text("x".repeat(500)),
                ])))
            })
            .expect("start");
        let r = settled(&tasks, &big.task.task_id, Some("alice")).await;
        assert_eq!(r.task.status(), TaskStatus::Failed);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["error"]["data"]["kind"], "too-large", "{v}");
    }
}
