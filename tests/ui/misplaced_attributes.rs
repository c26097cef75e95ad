// Attributes on fields they do not fit, and defaults that do not fit.
#[derive(pgactor::Entity)]
struct Stock {
    #[pgactor(varchar = 8)]
    quantity: i64,
    #[pgactor(default_now)]
    sku: String,
    #[pgactor(default = "zero")]
    count: i32,
    #[pgactor(default = 70000)]
    small: i16,
    #[pgactor(varchar = 2, default = "abc")]
    code: String,
    #[pgactor(skip, unique)]
    cache: Option<String>,
    #[pgactor(column = "a-b")]
    dashed: bool,
}

fn main() {}
