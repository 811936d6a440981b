//! Errors, with stable kinds that the C ABI maps one-to-one onto its status codes.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, as a stable category.
///
/// The discriminants are part of the C ABI (`lc_status`): they never change meaning and are
/// never reused. New kinds get new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ErrorKind {
    /// A required pointer argument was NULL (C ABI only).
    NullPointer = 1,
    /// A string argument was not valid UTF-8 (C ABI only).
    InvalidUtf8 = 2,
    /// An upstream address is empty or not a valid dial address.
    InvalidAddress = 3,
    /// A weight is 0 or above [`MAX_WEIGHT`](crate::MAX_WEIGHT).
    InvalidWeight = 4,
    /// A `max_requests`, `max_fails`, tier or duration is out of range.
    InvalidLimit = 5,
    /// No host is available: the list is empty, or every host is down, unhealthy, full or
    /// excluded.
    NoUpstream = 6,
    /// No host with that address is known to the pool.
    NotFound = 7,
    /// The reservation was already released (C ABI only: Rust's ownership prevents it).
    AlreadyReleased = 8,
    /// A source failed, panicked or returned invalid upstreams.
    SourceFailed = 9,
    /// The operation was cancelled (a refresh interrupted by a stopping refresher).
    Cancelled = 10,
    /// A panic was caught at the C boundary.
    Panic = 11,
    /// An invalid argument not covered by a more specific kind.
    InvalidArgument = 12,
    /// The operating system refused something (e.g. spawning the refresher thread).
    Os = 13,
    /// A pick was released at another address than the one it was selected into (C ABI
    /// only: a copy of an `lc_pick`).
    PickMoved = 14,
    /// A release found nothing in flight on its host, so nothing was released (C ABI only: a
    /// reservation released twice through a copy of an `lc_pick`).
    NotInFlight = 15,
    /// A configuration document (Caddy JSON) is malformed or asks for something unsupported;
    /// the message names the JSON path.
    InvalidConfig = 16,
    /// A shared zone was made by another layout, version, byte order or boot, is not ready,
    /// or has other capacities than those asked for; the message names what differs.
    ZoneIncompatible = 17,
    /// The memory or file offered for a shared zone is smaller than its capacities need.
    ZoneTooSmall = 18,
    /// A shared zone has no room left (no slot for a new address, no process or thread
    /// record).
    ZoneFull = 19,
    /// Another live process is still initialising the shared zone and did not finish within
    /// the wait.
    ZoneBusy = 20,
}

impl ErrorKind {
    /// The stable number of this kind (the C `lc_status` value).
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// A short, static description of this kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NullPointer => "a required pointer argument was NULL",
            ErrorKind::InvalidUtf8 => "a string argument was not valid UTF-8",
            ErrorKind::InvalidAddress => "invalid upstream address",
            ErrorKind::InvalidWeight => "invalid weight",
            ErrorKind::InvalidLimit => "value out of range",
            ErrorKind::NoUpstream => "no upstream available",
            ErrorKind::NotFound => "no host with that address",
            ErrorKind::AlreadyReleased => "reservation already released",
            ErrorKind::SourceFailed => "upstream source failed",
            ErrorKind::Cancelled => "operation cancelled",
            ErrorKind::Panic => "a panic was caught at the C boundary",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Os => "operating system error",
            ErrorKind::PickMoved => "pick released at another address than it was selected into (a copy)",
            ErrorKind::NotInFlight => "nothing in flight on the host: reservation already released through a copy",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::ZoneIncompatible => "shared zone made for another layout or capacities",
            ErrorKind::ZoneTooSmall => "shared zone memory too small",
            ErrorKind::ZoneFull => "shared zone full",
            ErrorKind::ZoneBusy => "shared zone still being initialised by another process",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from leastconn: a stable [`ErrorKind`] and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
}

impl Error {
    /// Creates an error of `kind` with a message that says what exactly was wrong.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable detail.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// The error type sources return: anything that can say what went wrong.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;
