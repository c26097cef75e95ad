// A column constant that does not exist fails to compile.
#[derive(pgactor::Entity)]
struct Stock {
    sku: String,
    quantity: i64,
}

fn main() {
    let _ = Stock::SKUU.eq("A-1");
}
