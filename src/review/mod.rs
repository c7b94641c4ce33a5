//! Reviewing a change between two stack files: the plan between them and what it does to
//! reachability.

/// TEMPORARY interface, replaced by the review module.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}
pub struct Review;
impl Review {
    pub fn between(_old: &crate::model::Stack, _new: &crate::model::Stack) -> Result<Review, crate::state::LowerError> {
        unimplemented!()
    }
    pub fn render(&self, _format: Format, _old: &str, _new: &str, _color: bool) -> String {
        unimplemented!()
    }
    pub fn has_changes(&self) -> bool {
        unimplemented!()
    }
}
