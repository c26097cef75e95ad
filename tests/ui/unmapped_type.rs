// A field type with no column type is refused on the type.
#[derive(pgactor::Entity)]
struct Stock {
    sku: String,
    quantity: u64,
    tags: Option<Vec<f32>>,
}

fn main() {}
