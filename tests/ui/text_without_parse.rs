// A #[pgactor(text)] field's type must implement Display and FromStr.
#[derive(Clone)]
struct Sku(String);

#[derive(pgactor::Entity)]
struct Stock {
    #[pgactor(text)]
    sku: Sku,
}

fn main() {}
