//! DynamoDB through the front door (SigV4-checked, proxied to moto): the conditional
//! writes the trust-policy lease is made of.

use crate::aws_support::*;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveStatus,
};

const TABLE: &str = "trust-lock";
const CONDITION: &str = "attribute_not_exists(lockId) OR expiresAt < :now";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn put(db: &aws_sdk_dynamodb::Client, owner: &str, expires_at: i64) -> Result<(), String> {
    db.put_item()
        .table_name(TABLE)
        .item("lockId", AttributeValue::S("trust-policy/eks-admin".into()))
        .item("owner", AttributeValue::S(owner.into()))
        .item("expiresAt", AttributeValue::N(expires_at.to_string()))
        .condition_expression(CONDITION)
        .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

async fn delete(db: &aws_sdk_dynamodb::Client, owner: &str) -> Result<(), String> {
    db.delete_item()
        .table_name(TABLE)
        .key("lockId", AttributeValue::S("trust-policy/eks-admin".into()))
        .condition_expression("#owner = :me")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":me", AttributeValue::S(owner.into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

#[tokio::test]
async fn conditional_put_and_delete_work_through_the_sandbox() {
    let sb = start().await;
    let db = aws_sdk_dynamodb::Client::new(&operator_config(&sb).await);
    db.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("lockId")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("lockId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");

    // Free: taken. Held and unexpired: refused. Expired: taken over.
    put(&db, "a", now() + 120).await.expect("first put");
    assert_eq!(
        put(&db, "b", now() + 120).await,
        Err("ConditionalCheckFailedException".to_owned())
    );
    // Only the owner may delete it.
    assert_eq!(
        delete(&db, "b").await,
        Err("ConditionalCheckFailedException".to_owned())
    );
    delete(&db, "a").await.expect("owner deletes");
    put(&db, "b", now() - 1).await.expect("free again");
    put(&db, "c", now() + 120)
        .await
        .expect("expired lease taken over");
    let item = db
        .get_item()
        .table_name(TABLE)
        .key("lockId", AttributeValue::S("trust-policy/eks-admin".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("item");
    assert_eq!(item["owner"], AttributeValue::S("c".into()));

    // Counted by operation; a wrong secret is refused before moto sees the call.
    let calls = eks_sandbox::aws::lock(&sb.shared()).calls.clone();
    assert_eq!(calls[&("dynamodb".to_owned(), "PutItem".to_owned())], 4);
    assert_eq!(calls[&("dynamodb".to_owned(), "DeleteItem".to_owned())], 2);
    let (ak, _) = sb.operator_credentials();
    let bad = config_for(&sb, &sb.region(), &ak, "wrong-secret", None).await;
    let err = aws_sdk_dynamodb::Client::new(&bad)
        .list_tables()
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_seed_creates_the_lease_table_like_the_template() {
    let sb = start().await;
    // Twice: a second seed keeps the table (and its TTL) and is not an error.
    let report = sb.seed().await.expect("seed");
    assert_eq!(sb.seed().await.expect("seed again"), report);
    assert_eq!(report.lock_table, eks_sandbox::aws::seed::LOCK_TABLE);

    let db = aws_sdk_dynamodb::Client::new(&operator_config(&sb).await);
    let table = db
        .describe_table()
        .table_name(&report.lock_table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("table");
    let key: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(key, [("lockId", KeyType::Hash)]);
    let attrs: Vec<_> = table
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_type().clone()))
        .collect();
    assert_eq!(attrs, [("lockId", ScalarAttributeType::S)]);
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode().cloned()),
        Some(BillingMode::PayPerRequest)
    );
    let ttl = db
        .describe_time_to_live()
        .table_name(&report.lock_table)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("ttl");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));

    // The lease takes and gives back through it, as the functions do.
    let owner = "seed-test";
    let lock_id = AttributeValue::S("trust-policy/eks-admin".into());
    db.put_item()
        .table_name(&report.lock_table)
        .item("lockId", lock_id.clone())
        .item("owner", AttributeValue::S(owner.into()))
        .item("expiresAt", AttributeValue::N((now() + 120).to_string()))
        .condition_expression(CONDITION)
        .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
        .send()
        .await
        .expect("lease taken");
    db.delete_item()
        .table_name(&report.lock_table)
        .key("lockId", lock_id)
        .send()
        .await
        .expect("lease given back");
    sb.shutdown().await;
}
