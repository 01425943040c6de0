//! Why a request failed, in words an operator can act on.

/// An error with its causes, each said once. reqwest's own text ("error sending request for
/// url (...)") leaves out why, and the why (an untrusted certificate, a refused connection) is
/// what the operator needs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}
