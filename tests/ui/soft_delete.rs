// `deleted_at` of a soft-delete struct is an Option<DateTime<Utc>>, kept by
// the adapter (it takes no attribute); `soft_delete` is given once.
#[derive(pgactor::Entity)]
#[pgactor(soft_delete)]
struct Doc {
    title: String,
    deleted_at: chrono::DateTime<chrono::Utc>,
}

#[derive(pgactor::Entity)]
#[pgactor(soft_delete)]
struct Unique {
    #[pgactor(unique)]
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(pgactor::Entity)]
#[pgactor(soft_delete, soft_delete)]
struct Twice {
    title: String,
}

fn main() {}
