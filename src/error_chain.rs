//! One line from an error and all its sources, for the failures whose cause
//! is several layers down; shared by the AWS and GitHub sides, which the
//! top-level error wraps.

/// An error and all its sources on one line (`outer: inner: innermost`), for
/// failures whose cause is several layers down (a refused connection inside
/// a dispatch failure inside an SDK error).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}
