// A partial's fields are checked against the entity's columns: a field the
// entity lacks, a field of another type, a non-Option field of a nullable
// column, and a missing `of`.

#[derive(pgactor::Entity)]
struct StockBalance {
    id: uuid::Uuid,
    sku: String,
    quantity: i64,
    note: Option<String>,
}

#[derive(pgactor::Partial)]
#[pgactor(of = StockBalance)]
struct Unknown {
    price: i64,
}

#[derive(pgactor::Partial)]
#[pgactor(of = StockBalance)]
struct WrongType {
    quantity: i32,
}

#[derive(pgactor::Partial)]
#[pgactor(of = StockBalance)]
struct NotAnOption {
    note: String,
}

#[derive(pgactor::Partial)]
struct NoEntity {
    sku: String,
}

fn main() {}
