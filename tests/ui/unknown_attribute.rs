// An attribute key the derive does not know is refused on the key.
#[derive(pgactor::Entity)]
#[pgactor(tabel = "stock")]
struct Stock {
    #[pgactor(uniq)]
    sku: String,
}

fn main() {}
