// What #[derive(Entity)] refuses of enum, citext and custom-type fields:
// pg_enum on a type that is no PgEnum, pg_enum with text, citext on a
// number, citext with sql_type or varchar, a bad sql_type name, and
// default_now on an Interval.

#[derive(Debug, Clone, Copy, pgactor::PgEnum)]
enum Mood {
    Sad,
}

#[derive(pgactor::Entity)]
struct NotAPgEnum {
    #[pgactor(pg_enum)]
    mood: String,
}

#[derive(pgactor::Entity)]
struct Misplaced {
    #[pgactor(pg_enum, text)]
    mood: Mood,
    #[pgactor(citext)]
    count: i64,
    #[pgactor(citext, sql_type = "ltree")]
    both: String,
    #[pgactor(citext, varchar = 8)]
    short: String,
    #[pgactor(sql_type = "public.ltree.x")]
    path: String,
    #[pgactor(default_now)]
    wait: pgactor::Interval,
}

fn main() {}
