// Two fields cannot be one column.
#[derive(pgactor::Entity)]
struct Stock {
    sku: String,
    #[pgactor(column = "sku")]
    code: String,
}

fn main() {}
