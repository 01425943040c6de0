//! `lookup NUMBER...` as one call: the command line's numbers checked, the state loaded, each
//! number answered for a person.

use super::answer::LookupAnswer;
use super::error::LookupError;
use super::state::LookupState;
use crate::config::Config;
use crate::number::Number;
use crate::store::Store;

/// Answers `lookup` for each of `numbers` from the state database. Every number is checked
/// before the state is loaded, so a typo costs nothing.
pub fn lookup(
    config: &Config,
    store: &Store,
    numbers: &[String],
) -> Result<Vec<LookupAnswer>, LookupError> {
    let parsed = parse_numbers(numbers)?;
    let state = LookupState::load(config, store)?;
    Ok(parsed.into_iter().map(|n| state.answer(n)).collect())
}

/// The numbers of a command line, or the first that is not one.
pub fn parse_numbers(numbers: &[String]) -> Result<Vec<Number>, LookupError> {
    numbers
        .iter()
        .map(|text| {
            Number::parse(text.trim()).map_err(|e| LookupError::Number {
                number: text.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}
