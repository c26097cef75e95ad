// An index naming no column of the struct is refused on that name.
#[derive(pgactor::Entity)]
#[pgactor(index(created_at), unique_index(warehouse, skuu))]
struct Stock {
    #[pgactor(column = "stock_keeping_unit")]
    sku: String,
    warehouse: String,
}

#[derive(pgactor::Entity)]
#[pgactor(index(sku))]
struct Renamed {
    #[pgactor(column = "stock_keeping_unit")]
    sku: String,
}

fn main() {}
