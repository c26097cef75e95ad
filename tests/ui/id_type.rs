// `id` is a uuid or an i64 key; the timestamps are DateTime<Utc>.
#[derive(pgactor::Entity)]
struct Stock {
    id: String,
    created_at: chrono::NaiveDate,
}

#[derive(pgactor::Entity)]
struct Nullable {
    id: Option<uuid::Uuid>,
    #[pgactor(unique)]
    updated_at: chrono::DateTime<chrono::Utc>,
}

fn main() {}
