//! Foreign keys declared on models: what AutoMigrate makes of them (the
//! constraint, its index, in any order of models, cycles included, once),
//! what a write that breaks one answers, what each ON DELETE does, and
//! what the registry refuses before anything is sent.

use pgactor::{
    ConstraintKind, Db, ErrorKind, Field, FieldType, Model, OnDelete, OpenOptions, Record, Registry,
};
use uuid::Uuid;

use crate::support::db::{in_schema, registry, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::primary_url;

fn warehouse() -> Model {
    Model::new("Warehouse").field(Field::new("name", FieldType::Text))
}

/// Items belong to a warehouse (deleted with it) and may name a backup
/// warehouse (forgotten when it goes).
fn item() -> Model {
    Model::new("Item")
        .field(Field::new("sku", FieldType::Text))
        .field(
            Field::new("warehouse_id", FieldType::Uuid).references("Warehouse", OnDelete::Cascade),
        )
        .field(
            Field::new("backup_id", FieldType::Uuid)
                .nullable()
                .references("Warehouse", OnDelete::SetNull),
        )
}

/// Shipments keep their warehouse from being deleted.
fn shipment() -> Model {
    Model::new("Shipment").field(
        Field::new("warehouse_id", FieldType::Uuid).references("Warehouse", OnDelete::Restrict),
    )
}

async fn open_in(schema: &str, models: Vec<Model>) -> pgactor::Result<Db> {
    OpenOptions::new(primary_url())
        .registry(registry(models))
        .session(in_schema(schema))
        .open()
        .await
}

async fn create(db: &Db, model: &str, record: Record) -> Uuid {
    db.create(model, record).await.unwrap().get("id").unwrap()
}

/// `(constraint, table, referenced table, confdeltype)` of every foreign
/// key in `schema`, by name.
async fn foreign_keys(schema: &str) -> Vec<(String, String, String, String)> {
    let obs = observer(&primary_url()).await;
    obs.query(
        "SELECT c.conname::text, t.relname::text, r.relname::text, c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_class r ON r.oid = c.confrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = $1 ORDER BY 1",
        &[&schema],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// The indexes of `table` in `schema`, by name.
async fn indexes(schema: &str, table: &str) -> Vec<String> {
    let obs = observer(&primary_url()).await;
    obs.query(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
        &[&schema, &table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn fk(name: &str, table: &str, target: &str, action: &str) -> (String, String, String, String) {
    (name.into(), table.into(), target.into(), action.into())
}

#[tokio::test]
async fn automigrate_makes_each_foreign_key_and_its_index_once() {
    let schema = unique_schema("fk_make");
    // The referencing models sort before the referenced one.
    let db = open_in(&schema, vec![item(), shipment(), warehouse()])
        .await
        .unwrap();
    let expected = vec![
        fk("item_backup_id_fkey", "item", "warehouse", "n"),
        fk("item_warehouse_id_fkey", "item", "warehouse", "c"),
        fk("shipment_warehouse_id_fkey", "shipment", "warehouse", "r"),
    ];
    assert_eq!(foreign_keys(&schema).await, expected);
    assert_eq!(
        indexes(&schema, "item").await,
        ["item_idx(backup_id)", "item_idx(warehouse_id)", "item_pkey"]
    );
    assert!(db.migrate().await.unwrap().statements.is_empty());
    db.close().await;

    let again = open_in(&schema, vec![item(), shipment(), warehouse()])
        .await
        .unwrap();
    assert!(again.migrate().await.unwrap().statements.is_empty());
    assert_eq!(foreign_keys(&schema).await, expected);
    again.close().await;
}

#[tokio::test]
async fn a_write_naming_a_missing_parent_is_a_foreign_key_violation() {
    let schema = unique_schema("fk_viol");
    let db = open_in(&schema, vec![warehouse(), item()]).await.unwrap();
    let orphan = Record::new()
        .with("sku", "A-1")
        .with("warehouse_id", Uuid::now_v7());
    let err = db.create("Item", orphan).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::ForeignKey),
        "{err}"
    );
    let violation = err.constraint().expect("the violation");
    assert_eq!(
        violation.constraint.as_deref(),
        Some("item_warehouse_id_fkey")
    );
    assert_eq!(violation.table.as_deref(), Some("item"));
    assert!(!err.is_retryable());

    // An update to a missing parent too, and nothing changes.
    let home = create(&db, "Warehouse", Record::new().with("name", "home")).await;
    let id = create(
        &db,
        "Item",
        Record::new().with("sku", "A-2").with("warehouse_id", home),
    )
    .await;
    let err = db
        .update("Item", id, Record::new().with("backup_id", Uuid::now_v7()))
        .await
        .unwrap_err();
    let violation = err.constraint().expect("the violation");
    assert_eq!(violation.kind, ConstraintKind::ForeignKey);
    assert_eq!(violation.constraint.as_deref(), Some("item_backup_id_fkey"));
    let row = db.read("Item", id).await.unwrap();
    assert_eq!(row.get::<Option<Uuid>>("backup_id").unwrap(), None);
    db.close().await;
}

#[tokio::test]
async fn deleting_a_parent_cascades_sets_null_or_is_refused_as_declared() {
    let schema = unique_schema("fk_del");
    let db = open_in(&schema, vec![warehouse(), item(), shipment()])
        .await
        .unwrap();
    let name = |n: &str| Record::new().with("name", n);
    let (home, spare, dock) = (
        create(&db, "Warehouse", name("home")).await,
        create(&db, "Warehouse", name("spare")).await,
        create(&db, "Warehouse", name("dock")).await,
    );
    let kept = create(
        &db,
        "Item",
        Record::new()
            .with("sku", "kept")
            .with("warehouse_id", dock)
            .with("backup_id", spare),
    )
    .await;
    let gone = create(
        &db,
        "Item",
        Record::new().with("sku", "gone").with("warehouse_id", home),
    )
    .await;
    let shipment = create(&db, "Shipment", Record::new().with("warehouse_id", dock)).await;

    // SET NULL: the backup is forgotten, the item stays.
    db.delete("Warehouse", spare).await.unwrap();
    let row = db.read("Item", kept).await.unwrap();
    assert_eq!(row.get::<Option<Uuid>>("backup_id").unwrap(), None);

    // CASCADE: the item goes with its warehouse.
    db.delete("Warehouse", home).await.unwrap();
    let err = db.read("Item", gone).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // RESTRICT: a shipment keeps its warehouse, by id or by filter.
    let err = db.delete("Warehouse", dock).await.unwrap_err();
    let violation = err.constraint().expect("the violation");
    assert_eq!(violation.kind, ConstraintKind::ForeignKey, "{err}");
    assert_eq!(
        violation.constraint.as_deref(),
        Some("shipment_warehouse_id_fkey")
    );
    let err = db
        .delete_where("Warehouse", pgactor::Filter::eq("name", "dock"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::ForeignKey)
    );
    db.read("Warehouse", dock).await.unwrap();
    db.read("Item", kept).await.unwrap();

    db.delete("Shipment", shipment).await.unwrap();
    db.delete("Warehouse", dock).await.unwrap();
    assert_eq!(
        db.read("Item", kept).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    db.close().await;
}

#[tokio::test]
async fn models_that_reference_each_other_migrate() {
    let schema = unique_schema("fk_cycle");
    let person = Model::new("Person").field(
        Field::new("team_id", FieldType::Uuid)
            .nullable()
            .references("Team", OnDelete::SetNull),
    );
    let team = Model::new("Team")
        .primary_key(pgactor::PrimaryKey::Identity)
        .field(
            Field::new("lead_id", FieldType::Uuid)
                .nullable()
                .references("Person", OnDelete::SetNull),
        )
        .field(
            Field::new("parent_id", FieldType::I64)
                .nullable()
                .references("Team", OnDelete::Cascade),
        );
    // Team's key is an identity: Person.team_id must be I64.
    let err = Registry::new()
        .with(person.clone())
        .unwrap()
        .with(team.clone())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let person = Model::new("Person").field(
        Field::new("team_id", FieldType::I64)
            .nullable()
            .references("Team", OnDelete::SetNull),
    );
    let db = open_in(&schema, vec![person, team]).await.unwrap();
    assert_eq!(
        foreign_keys(&schema).await,
        vec![
            fk("person_team_id_fkey", "person", "team", "n"),
            fk("team_lead_id_fkey", "team", "person", "n"),
            fk("team_parent_id_fkey", "team", "team", "c"),
        ]
    );
    let lead = create(&db, "Person", Record::new()).await;
    let team = db
        .create("Team", Record::new().with("lead_id", lead))
        .await
        .unwrap();
    let team_id: i64 = team.get("id").unwrap();
    let sub = db
        .create("Team", Record::new().with("parent_id", team_id))
        .await
        .unwrap();
    db.update("Person", lead, Record::new().with("team_id", team_id))
        .await
        .unwrap();
    // The parent team's delete takes its sub-team and forgets the lead's team.
    db.delete("Team", team_id).await.unwrap();
    let sub_id: i64 = sub.get("id").unwrap();
    assert_eq!(
        db.read("Team", sub_id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let lead_row = db.read("Person", lead).await.unwrap();
    assert_eq!(lead_row.get::<Option<i64>>("team_id").unwrap(), None);
    db.close().await;
}

#[tokio::test]
async fn a_reference_added_to_a_table_with_orphan_rows_fails_the_open_until_they_are_fixed() {
    let schema = unique_schema("fk_add");
    let db = open_in(&schema, vec![warehouse(), loose()]).await.unwrap();
    let home = create(&db, "Warehouse", Record::new().with("name", "home")).await;
    let fine = create(
        &db,
        "Item",
        Record::new().with("sku", "fine").with("warehouse_id", home),
    )
    .await;
    let orphan = create(
        &db,
        "Item",
        Record::new()
            .with("sku", "orphan")
            .with("warehouse_id", Uuid::now_v7()),
    )
    .await;
    db.close().await;

    // The model gains the reference (and a new referencing column).
    let err = open_in(&schema, vec![warehouse(), item()])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"item_warehouse_id_fkey\"") && text.contains("23503"),
        "{text}"
    );
    assert!(text.contains("reference rows that do not exist"), "{text}");
    assert!(foreign_keys(&schema).await.is_empty(), "nothing applied");

    let db = open_in(&schema, vec![warehouse(), loose()]).await.unwrap();
    db.update("Item", orphan, Record::new().with("warehouse_id", home))
        .await
        .unwrap();
    db.close().await;
    let db = open_in(&schema, vec![warehouse(), item()]).await.unwrap();
    assert_eq!(foreign_keys(&schema).await.len(), 2);
    let row = db.read("Item", fine).await.unwrap();
    assert_eq!(row.get::<Option<Uuid>>("backup_id").unwrap(), None);
    db.close().await;
}

/// `Item` before it declared its references.
fn loose() -> Model {
    Model::new("Item")
        .field(Field::new("sku", FieldType::Text))
        .field(Field::new("warehouse_id", FieldType::Uuid))
}

#[tokio::test]
async fn a_reference_to_an_unregistered_model_is_refused_before_connecting() {
    let err = OpenOptions::new("postgres://nobody@127.0.0.1:1/none")
        .registry(registry([item()]))
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string()
            .contains("field \"warehouse_id\" references \"Warehouse\", which is not registered"),
        "{err}"
    );
    let not_nullable = Model::new("Item").field(
        Field::new("warehouse_id", FieldType::Uuid).references("Warehouse", OnDelete::SetNull),
    );
    assert!(Registry::new().with(not_nullable).is_err());
}

/// The same models, as structs.
#[derive(Debug, Clone, Default, pgactor::Entity)]
struct Depot {
    id: Uuid,
    name: String,
}

#[derive(Debug, Clone, Default, pgactor::Entity)]
struct Crate {
    id: Uuid,
    #[pgactor(references = "Depot", on_delete = "cascade")]
    depot_id: Uuid,
    #[pgactor(references = "Depot", on_delete = "set_null")]
    spare_id: Option<Uuid>,
}

#[tokio::test]
async fn derived_references_migrate_and_cascade() {
    let schema = unique_schema("fk_typed");
    let db = OpenOptions::new(primary_url())
        .registry(
            Registry::new()
                .with_entity::<Crate>()
                .unwrap()
                .with_entity::<Depot>()
                .unwrap(),
        )
        .session(in_schema(&schema))
        .open()
        .await
        .unwrap();
    assert_eq!(
        foreign_keys(&schema).await,
        vec![
            fk("crate_depot_id_fkey", "crate", "depot", "c"),
            fk("crate_spare_id_fkey", "crate", "depot", "n"),
        ]
    );
    let depot = db
        .typed::<Depot>()
        .create(&Depot {
            name: "north".into(),
            ..Depot::default()
        })
        .await
        .unwrap();
    let crates = db.typed::<Crate>();
    let err = crates
        .create(&Crate {
            depot_id: Uuid::now_v7(),
            ..Crate::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::ForeignKey)
    );
    let held = crates
        .create(&Crate {
            depot_id: depot.id,
            spare_id: Some(depot.id),
            ..Crate::default()
        })
        .await
        .unwrap();
    db.typed::<Depot>().delete(depot.id).await.unwrap();
    assert_eq!(
        crates.read(held.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    db.close().await;
}
