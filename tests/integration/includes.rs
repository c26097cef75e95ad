//! Includes: the rows related to a page loaded in one statement per
//! relation (never one per row), belongs-to, has-many and nested, typed,
//! in a transaction, by message and on the replica; soft-deleted related
//! rows left out; unknown relations, deep paths and too many related rows
//! refused.

use std::collections::HashSet;

use pgactor::{
    Call, DbMsg, ErrorKind, ListRequest, OpenOptions, Query, QueryBounds, Record, Registry, TxMsg,
    TxOptions,
};
use uuid::Uuid;

use crate::support::db::{fast_probe, in_schema, unique_schema};
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::{primary_url, Topology};
use crate::support::wait::{eventually, ready};

#[derive(Debug, Clone, PartialEq, Default, pgactor::Entity)]
struct Customer {
    id: Uuid,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Default, pgactor::Entity)]
struct Order {
    id: Uuid,
    #[pgactor(references = "Customer", on_delete = "cascade")]
    customer_id: Uuid,
    number: i64,
}

#[derive(Debug, Clone, PartialEq, Default, pgactor::Entity)]
#[pgactor(soft_delete)]
struct OrderLine {
    id: Uuid,
    #[pgactor(references = "Order", on_delete = "cascade")]
    order_id: Uuid,
    #[pgactor(references = "Product")]
    product_id: Option<Uuid>,
    quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Default, pgactor::Entity)]
#[pgactor(soft_delete)]
struct Product {
    id: Uuid,
    name: String,
}

fn shop() -> Registry {
    Registry::new()
        .with_entity::<Customer>()
        .unwrap()
        .with_entity::<Order>()
        .unwrap()
        .with_entity::<OrderLine>()
        .unwrap()
        .with_entity::<Product>()
        .unwrap()
}

/// What [`seed`] stored.
struct Shop {
    customers: Vec<Customer>,
    orders: Vec<Order>,
    lines: Vec<OrderLine>,
    products: Vec<Product>,
}

/// Five customers, 50 orders (order `n` is customer `n % 5`'s), two
/// products, and `n % 3` lines for order `n` (product `n % 2`).
async fn seed(db: &pgactor::Db) -> Shop {
    let customers = db
        .typed::<Customer>()
        .create_many(
            &(0..5)
                .map(|n| Customer {
                    name: format!("C-{n}"),
                    ..Customer::default()
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let products = db
        .typed::<Product>()
        .create_many(&[
            Product {
                name: "bolt".into(),
                ..Product::default()
            },
            Product {
                name: "nut".into(),
                ..Product::default()
            },
        ])
        .await
        .unwrap();
    let orders = db
        .typed::<Order>()
        .create_many(
            &(0..50)
                .map(|n| Order {
                    customer_id: customers[n % 5].id,
                    number: n as i64,
                    ..Order::default()
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let product_ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
    let lines: Vec<OrderLine> = orders
        .iter()
        .enumerate()
        .flat_map(|(n, order)| {
            let product = product_ids[n % 2];
            (0..n % 3).map(move |k| OrderLine {
                order_id: order.id,
                product_id: Some(product),
                quantity: k as i64 + 1,
                ..OrderLine::default()
            })
        })
        .collect();
    let lines = db.typed::<OrderLine>().create_many(&lines).await.unwrap();
    Shop {
        customers,
        orders,
        lines,
        products,
    }
}

async fn open(prefix: &str, bounds: QueryBounds) -> (pgactor::Db, String) {
    let schema = unique_schema(prefix);
    let db = OpenOptions::new(primary_url())
        .registry(shop())
        .session(in_schema(&schema))
        .query_bounds(bounds)
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// How many times a statement loading `table`'s rows by `column` ran.
async fn loads(obs: &tokio_postgres::Client, schema: &str, table: &str, column: &str) -> i64 {
    let text = format!("FROM \"{schema}\".\"{table}\" WHERE \"{column}\" = ANY($1)");
    statements_containing(obs, &text).await
}

#[tokio::test]
async fn a_belongs_to_include_of_a_page_of_50_rows_is_one_statement() {
    let (db, schema) = open("incl_belongs", QueryBounds::default()).await;
    let shop = seed(&db).await;
    let obs = observer(&primary_url()).await;
    let page = db
        .list(
            "Order",
            Query::new()
                .include("customer")
                .sort_asc("number")
                .limit(50),
        )
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 50);
    // Five distinct customers, each loaded once, by one statement.
    assert_eq!(loads(&obs, &schema, "customer", "id").await, 1);
    assert_eq!(page.included.records("customer").unwrap().len(), 5);
    for (n, order) in page.rows.iter().enumerate() {
        let customer = page.included.of("customer", order).unwrap();
        assert_eq!(customer.len(), 1);
        assert_eq!(
            customer[0].get::<String>("name").unwrap(),
            shop.customers[n % 5].name
        );
    }
    // Typed: the page's rows and the related rows as entities.
    let typed = db
        .typed::<Order>()
        .list(Query::new().include("customer").sort_asc(Order::NUMBER))
        .await
        .unwrap();
    assert_eq!(typed.rows, shop.orders);
    for order in &typed.rows {
        let customer: Vec<Customer> = typed
            .included
            .related_as("customer", order.customer_id)
            .unwrap();
        assert_eq!(customer.len(), 1);
        assert_eq!(customer[0].id, order.customer_id);
    }
    let all: Vec<Customer> = typed.included.all_as("customer").unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(loads(&obs, &schema, "customer", "id").await, 2);
    // A subset keeps the foreign key its include follows.
    let subset = db
        .list("Order", Query::new().select(["number"]).include("customer"))
        .await
        .unwrap();
    let first = &subset.rows[0];
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(subset.included.of("customer", first).unwrap().len(), 1);
    db.close().await;
}

#[tokio::test]
async fn has_many_and_nested_includes_are_one_statement_per_relation() {
    let (db, schema) = open("incl_nested", QueryBounds::default()).await;
    let shop = seed(&db).await;
    let obs = observer(&primary_url()).await;
    let page = db
        .list(
            "Customer",
            Query::new()
                .include("Order.OrderLine.product")
                .sort_asc("name"),
        )
        .await
        .unwrap();
    assert_eq!(
        page.included.paths().collect::<Vec<_>>(),
        ["Order", "Order.OrderLine", "Order.OrderLine.product"]
    );
    assert_eq!(loads(&obs, &schema, "order", "customer_id").await, 1);
    assert_eq!(loads(&obs, &schema, "order_line", "order_id").await, 1);
    assert_eq!(loads(&obs, &schema, "product", "id").await, 1);
    assert_eq!(page.included.records("Order").unwrap().len(), 50);
    assert_eq!(
        page.included.records("Order.OrderLine").unwrap().len(),
        shop.lines.len()
    );
    assert_eq!(
        page.included
            .records("Order.OrderLine.product")
            .unwrap()
            .len(),
        2
    );
    for (n, customer) in page.rows.iter().enumerate() {
        let orders = page.included.of("Order", customer).unwrap();
        assert_eq!(orders.len(), 10, "customer {n}");
        for order in &orders {
            let number: i64 = order.get("number").unwrap();
            assert_eq!(number as usize % 5, n);
            let lines = page.included.of("Order.OrderLine", order).unwrap();
            assert_eq!(lines.len(), number as usize % 3);
            for line in &lines {
                let product = page.included.of("Order.OrderLine.product", line).unwrap();
                let name: String = product[0].get("name").unwrap();
                assert_eq!(name, shop.products[number as usize % 2].name);
            }
        }
    }
    // The has-many form naming its field is the same relation.
    let named = db
        .list("Customer", Query::new().include("Order(customer_id)"))
        .await
        .unwrap();
    assert_eq!(
        named.included.records("Order(customer_id)").unwrap().len(),
        50
    );
    db.close().await;
}

#[tokio::test]
async fn soft_deleted_related_rows_are_left_out() {
    let (db, _) = open("incl_soft", QueryBounds::default()).await;
    let shop = seed(&db).await;
    let bolt = &shop.products[0];
    db.delete("Product", bolt.id).await.unwrap();
    let line = &shop.lines[0];
    db.delete("OrderLine", line.id).await.unwrap();
    let page = db
        .list("Order", Query::new().include("OrderLine.product"))
        .await
        .unwrap();
    let lines = page.included.records("OrderLine").unwrap();
    assert_eq!(lines.len(), shop.lines.len() - 1);
    assert!(lines
        .iter()
        .all(|l| l.get::<Uuid>("id").unwrap() != line.id));
    let products = page.included.records("OrderLine.product").unwrap();
    let names: HashSet<String> = products.iter().map(|p| p.get("name").unwrap()).collect();
    assert_eq!(names, HashSet::from(["nut".to_owned()]));
    // A line of the deleted product has no related product.
    let of_bolt = lines
        .iter()
        .find(|l| l.get::<Option<Uuid>>("product_id").unwrap() == Some(bolt.id))
        .expect("a line of the bolt");
    assert!(page
        .included
        .of("OrderLine.product", of_bolt)
        .unwrap()
        .is_empty());
    db.close().await;
}

#[tokio::test]
async fn unknown_relations_and_deep_paths_are_refused_before_any_sql() {
    let (db, schema) = open("incl_refused", QueryBounds::default()).await;
    seed(&db).await;
    let obs = observer(&primary_url()).await;
    let err = db
        .list("Order", Query::new().include("customers"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("its relations: customer, OrderLine"),
        "{err}"
    );
    let err = db
        .list(
            "Customer",
            Query::new().include("Order.OrderLine.product.maker"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_include_depth"), "{err}");
    let err = db
        .list("Customer", Query::new().include("Order.nothing"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("model \"Order\" has no relation"),
        "{err}"
    );
    // lock_next takes no includes.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let err = tx
        .lock_next("Order", Query::new().include("customer"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    tx.rollback().await.unwrap();
    let text = format!("FROM \"{schema}\".\"order\" WHERE");
    assert_eq!(statements_containing(&obs, &text).await, 0, "no SQL sent");
    db.close().await;
}

#[tokio::test]
async fn a_relation_with_more_rows_than_its_bound_is_refused() {
    let bounds = QueryBounds {
        max_included_rows: 9,
        max_includes: 1,
        ..QueryBounds::default()
    };
    let (db, _) = open("incl_bound", bounds).await;
    seed(&db).await;
    // Each customer has 10 orders.
    let one = Query::new().sort_asc("name").limit(1);
    let err = db
        .list("Customer", one.clone().include("Order"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_included_rows"), "{err}");
    // Five orders' customers are within it.
    let page = db
        .list("Order", Query::new().include("customer").limit(5))
        .await
        .unwrap();
    assert!(page.included.records("customer").unwrap().len() <= 5);
    let err = db
        .list("Order", Query::new().include("OrderLine.product"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_includes"), "{err}");
    db.close().await;
}

#[tokio::test]
async fn includes_run_in_a_transaction_on_its_connection_and_by_message() {
    let (db, _) = open("incl_tx", QueryBounds::default()).await;
    let shop = seed(&db).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let fresh = tx
        .create(
            "Order",
            Record::new()
                .with("customer_id", shop.customers[0].id)
                .with("number", 100_i64),
        )
        .await
        .unwrap();
    // The transaction's own uncommitted order is among the customer's.
    let page = tx
        .list(
            "Customer",
            Query::new().include("Order").sort_asc("name").limit(1),
        )
        .await
        .unwrap();
    let orders = page.included.of("Order", &page.rows[0]).unwrap();
    assert_eq!(orders.len(), 11);
    assert!(orders.contains(&fresh));
    let typed = tx
        .typed::<Customer>()
        .list(Query::new().include("Order").sort_asc("name").limit(1))
        .await
        .unwrap();
    let theirs: Vec<Order> = typed
        .included
        .related_as("Order", typed.rows[0].id)
        .unwrap();
    assert_eq!(theirs.len(), 11);
    let req = ListRequest {
        model: "Customer".into(),
        query: Query::new().include("Order").sort_asc("name").limit(1),
    };
    let by_tx_message = ractor::call!(tx.actor(), TxMsg::List, req.clone())
        .unwrap()
        .unwrap();
    assert_eq!(by_tx_message.included, page.included);
    tx.rollback().await.unwrap();
    // Outside it, by message: the rolled-back order is gone.
    let by_message = ractor::call!(db.actor(), DbMsg::List, req, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(
        by_message
            .included
            .of("Order", &by_message.rows[0])
            .unwrap()
            .len(),
        10
    );
    let typed_message = ractor::call!(
        db.actor(),
        DbMsg::list_as::<Order>,
        Query::new().include("customer").limit(3),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert!(!typed_message
        .included
        .all_as::<Customer>("customer")
        .unwrap()
        .is_empty());
    db.close().await;
}

#[tokio::test]
async fn includes_read_the_replica_with_the_list() {
    let topo = Topology::up();
    let schema = unique_schema("incl_replica");
    let db = OpenOptions::new(topo.primary())
        .read_dsn(topo.replica())
        .registry(shop())
        .replica(fast_probe())
        .session(in_schema(&schema))
        .open()
        .await
        .expect("open");
    let shop = seed(&db).await;
    let last = shop.lines.last().unwrap().id;
    // Reads go to the replica: once it has the last line, the page's
    // includes see every row.
    let page = eventually("the shop on the replica", || async {
        let page = db
            .list(
                "Order",
                Query::new().include("OrderLine").include("customer"),
            )
            .await
            .map_err(|e| e.to_string())?;
        let lines = page
            .included
            .records("OrderLine")
            .map_err(|e| e.to_string())?;
        let replayed = lines.iter().any(|l| l.get::<Uuid>("id").unwrap() == last);
        ready(replayed, page).map_err(str::to_owned)
    })
    .await;
    assert_eq!(page.included.records("customer").unwrap().len(), 5);
    assert!(db.stats().replica.expect("a replica").up);
    db.close().await;
}
