// Only a struct with named fields and no generics is an entity.
#[derive(pgactor::Entity)]
enum Kind {
    A,
}

#[derive(pgactor::Entity)]
struct Pair(String, i64);

#[derive(pgactor::Entity)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
