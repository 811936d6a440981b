//! Is a process still alive? The one liveness check of the crate (docs/design-zone.md, 4.2).
//!
//! A zone records each attached process as (pid, starttime): the pid alone would be reused by
//! an unrelated process after the first one died, the starttime (clock ticks since boot at
//! which the process started, field 22 of `/proc/PID/stat`) tells the two apart, and the zone's
//! boot id rules out a reboot. [`System`] judges such a pair:
//!
//! * `kill(pid, 0)` fails with `ESRCH`: no such process, **dead**.
//! * `/proc/PID/stat` says state `Z` or `X`: a zombie (for example a SIGKILLed nginx worker
//!   that its master has not reaped yet), **dead**; its memory writes are final.
//! * its starttime differs from the recorded one: the pid was reused, **dead**.
//! * `kill` fails with `EPERM` (a process of another user): it exists, and the starttime is
//!   still compared.
//! * `/proc/PID/stat` is gone while `kill` still finds the pid: the process is hidden from us
//!   (`/proc` mounted with `hidepid`), since an exited process keeps its `/proc` entry until
//!   it is reaped and `kill` fails once it is; a second `kill` tells the two apart (an exit
//!   between the first `kill` and the read makes it fail). **Alive**, unverified.
//! * `/proc` unreadable or unparsable: **alive**, unverified. So a dead process whose pid was
//!   reused is never found where `/proc` hides it: a documented limitation, as is a zone
//!   shared across pid namespaces (every process attached to a zone must see the others'
//!   pids, or `kill` declares them dead).
//!
//! A recorded starttime of 0 means "not known" (a registrant between its two steps, or an
//! initialiser, which records only its pid): such a pid is judged without the comparison.
//!
//! Tests inject an oracle through the [`Liveness`] trait instead of real processes.

#![cfg_attr(not(test), allow(dead_code, reason = "starttime_of is used by tests only"))]

use std::io;

/// Judges whether the process that registered as (pid, starttime) is still alive.
pub(crate) trait Liveness {
    /// The verdict on the process `pid` whose starttime was recorded as `starttime` (0 when
    /// it is not known).
    fn judge(&self, pid: u32, starttime: u64) -> Verdict;

    /// Whether [`judge`](Liveness::judge) finds the process alive.
    fn is_alive(&self, pid: u32, starttime: u64) -> bool {
        self.judge(pid, starttime) == Verdict::Alive
    }
}

/// What [`Liveness::judge`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The process exists (or cannot be checked: see the module docs).
    Alive,
    /// The process is gone.
    Dead(Death),
}

/// Why a process is judged dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Death {
    /// No process has the pid (`kill` says `ESRCH`), or the pid is not a valid one.
    NoProcess,
    /// The process has exited and not been reaped yet (state `Z` or `X`).
    Zombie,
    /// Another process has the pid now: its starttime is `found`, the record says `recorded`.
    Reused { recorded: u64, found: u64 },
}

/// The production liveness check: `kill(pid, 0)` and `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct System;

/// What `kill(pid, 0)` says about a pid.
#[derive(PartialEq, Eq)]
enum Kill {
    Exists,
    NoSuchProcess,
}

fn probe(pid: libc::pid_t) -> Kill {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists and may be
    // signalled. `pid` > 0, so no process group is meant.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return Kill::Exists;
    }
    // EPERM: it exists under another uid. Anything else (only ESRCH is documented) says no.
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => Kill::Exists,
        _ => Kill::NoSuchProcess,
    }
}

impl Liveness for System {
    fn judge(&self, pid: u32, starttime: u64) -> Verdict {
        // kill(0 or negative, ...) would probe process groups: no record holds such a pid.
        let Some(pid) = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0) else {
            return Verdict::Dead(Death::NoProcess);
        };
        if probe(pid) == Kill::NoSuchProcess {
            return Verdict::Dead(Death::NoProcess);
        }
        match read_stat(&format!("/proc/{pid}/stat")) {
            Ok(stat) => match parse_stat(&stat) {
                Some(Stat { state: 'Z' | 'X', .. }) => Verdict::Dead(Death::Zombie),
                Some(Stat { starttime: found, .. }) if starttime != 0 && found != starttime => {
                    Verdict::Dead(Death::Reused { recorded: starttime, found })
                }
                // Alive, or a stat line this code cannot read: alive, unverified.
                _ => Verdict::Alive,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => match probe(pid) {
                Kill::NoSuchProcess => Verdict::Dead(Death::NoProcess),
                // Hidden by hidepid: alive, unverified.
                Kill::Exists => Verdict::Alive,
            },
            // /proc unreadable: alive, unverified.
            Err(_) => Verdict::Alive,
        }
    }
}

/// Whether process `pid` is alive, judged without a starttime: what the init-state protocol
/// knows of an initialiser.
pub(crate) fn pid_alive(pid: u32) -> bool {
    System.is_alive(pid, 0)
}

fn read_stat(path: &str) -> io::Result<String> {
    if cfg!(miri) {
        // Miri's isolation stops the run at any `open`, as it would at `kill`.
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    std::fs::read_to_string(path)
}

/// The fields of a `/proc/PID/stat` line that liveness needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    /// Field 3: R, S, D, Z, X ...
    state: char,
    /// Field 22: clock ticks after boot at which the process started.
    starttime: u64,
}

/// Parses a `/proc/PID/stat` line. Field 2 is the command name in parentheses, which may
/// itself hold spaces and parentheses, so fields are counted after the *last* `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let mut state_chars = state.chars();
    let state = state_chars.next().filter(|_| state_chars.next().is_none())?;
    // Fields 4 to 21 come between the state (field 3) and the starttime (field 22).
    let starttime = fields.nth(22 - 4)?.parse().ok()?;
    Some(Stat { state, starttime })
}

/// The starttime of process `pid` (field 22 of `/proc/PID/stat`), `None` where it cannot be
/// read.
pub(crate) fn starttime_of(pid: u32) -> Option<u64> {
    parse_stat(&read_stat(&format!("/proc/{pid}/stat")).ok()?).map(|s| s.starttime)
}

/// This process's starttime, `None` where `/proc` cannot be read (a registration then
/// records 0: judged by `kill` only).
pub(crate) fn self_starttime() -> Option<u64> {
    parse_stat(&read_stat("/proc/self/stat").ok()?).map(|s| s.starttime)
}

/// A test oracle: processes are alive unless marked dead, with the starttimes given.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Oracle {
    /// (pid, starttime) of the processes that exist; any other pid does not.
    alive: std::sync::Mutex<Vec<(u32, u64)>>,
}

#[cfg(test)]
impl Oracle {
    /// An oracle in which exactly `processes` exist.
    pub(crate) fn with(processes: &[(u32, u64)]) -> Self {
        Self { alive: std::sync::Mutex::new(processes.to_vec()) }
    }

    /// Process `pid` ends.
    pub(crate) fn kill(&self, pid: u32) {
        self.alive.lock().unwrap().retain(|&(p, _)| p != pid);
    }
}

#[cfg(test)]
impl Liveness for Oracle {
    fn judge(&self, pid: u32, starttime: u64) -> Verdict {
        match self.alive.lock().unwrap().iter().find(|&&(p, _)| p == pid) {
            None => Verdict::Dead(Death::NoProcess),
            Some(&(_, found)) if starttime != 0 && found != starttime => {
                Verdict::Dead(Death::Reused { recorded: starttime, found })
            }
            Some(_) => Verdict::Alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1234 56 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(parse_stat(line), Some(Stat { state: 'S', starttime: 987_654 }));
        let zombie = "7 (nginx: worker process) Z 6 6 6 0 -1 4228 0 0 0 0 0 0 0 0 20 0 1 0 31337 0 0";
        assert_eq!(parse_stat(zombie), Some(Stat { state: 'Z', starttime: 31_337 }));
    }

    #[test]
    fn unreadable_stat_lines_parse_to_nothing() {
        for line in ["", "4242 (cut", "4242 (x) S 1 2 3", "4242 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"]
        {
            assert_eq!(parse_stat(line), None, "{line:?}");
        }
        let not_a_number = "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 soon 20";
        assert_eq!(parse_stat(not_a_number), None);
    }

    #[test]
    fn oracle_judges_missing_and_reused_pids_dead() {
        let oracle = Oracle::with(&[(10, 100), (11, 200)]);
        assert_eq!(oracle.judge(10, 100), Verdict::Alive);
        assert_eq!(oracle.judge(10, 0), Verdict::Alive);
        assert_eq!(oracle.judge(11, 201), Verdict::Dead(Death::Reused { recorded: 201, found: 200 }));
        assert_eq!(oracle.judge(12, 0), Verdict::Dead(Death::NoProcess));
        oracle.kill(10);
        assert!(!oracle.is_alive(10, 100));
    }

    #[test]
    #[cfg_attr(miri, ignore = "kill(2) and /proc are not available under Miri's isolation")]
    fn this_process_is_alive_with_its_own_starttime_and_dead_with_another() {
        let me = std::process::id();
        let start = self_starttime().expect("/proc/self/stat");
        assert_eq!(starttime_of(me), Some(start));
        assert_eq!(System.judge(me, start), Verdict::Alive);
        assert_eq!(System.judge(me, 0), Verdict::Alive);
        assert_eq!(System.judge(me, start + 1), Verdict::Dead(Death::Reused { recorded: start + 1, found: start }));
        assert!(pid_alive(me));
    }

    #[test]
    #[cfg_attr(miri, ignore = "kill(2) and /proc are not available under Miri's isolation")]
    fn pids_that_name_no_process_are_dead() {
        // Pids are below pid_max, so this one names no process.
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
        for pid in [0, pid_max, u32::MAX] {
            assert_eq!(System.judge(pid, 0), Verdict::Dead(Death::NoProcess), "pid {pid}");
        }
        assert!(!pid_alive(pid_max));
        assert_eq!(starttime_of(pid_max), None);
    }
}
