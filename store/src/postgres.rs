//! stub
/// stub
#[derive(Debug)]
pub struct PostgresStore;
