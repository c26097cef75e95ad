// `searchable` fits a text column only; `search_language` is a lower-case
// plain identifier and needs a searchable field.
#[derive(pgactor::Entity)]
struct Numbers {
    #[pgactor(searchable)]
    count: i64,
    #[pgactor(searchable)]
    tags: Vec<String>,
    #[pgactor(searchable)]
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(pgactor::Entity)]
#[pgactor(search_language = "English")]
struct Upper {
    #[pgactor(searchable)]
    title: String,
}

#[derive(pgactor::Entity)]
#[pgactor(search_language = "simple")]
struct Unsearched {
    title: String,
}

fn main() {}
