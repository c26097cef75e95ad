// What #[derive(PgEnum)] refuses: a struct, a variant holding data, two
// variants with one label, a label past 63 bytes, a type name that is no
// plain identifier, an unknown attribute, no variant.

#[derive(pgactor::PgEnum)]
struct NotAnEnum {
    mood: String,
}

#[derive(pgactor::PgEnum)]
enum WithData {
    Sad,
    Ok(u8),
}

#[derive(pgactor::PgEnum)]
enum TwiceOneLabel {
    Sad,
    #[pgactor(label = "sad")]
    Down,
}

#[derive(pgactor::PgEnum)]
enum LongLabel {
    #[pgactor(label = "a_label_that_is_much_longer_than_the_sixty_three_bytes_postgres_takes")]
    Long,
}

#[derive(pgactor::PgEnum)]
#[pgactor(type_name = "my mood")]
enum BadName {
    Sad,
}

#[derive(pgactor::PgEnum)]
#[pgactor(table = "mood")]
enum UnknownAttribute {
    Sad,
}

#[derive(pgactor::PgEnum)]
enum Empty {}

fn main() {}
