//! The adapters: AWS (IAM, EKS, the DynamoDB lease, SDK settings) and Kubernetes
//! (aws-auth store, clients, EKS tokens). They implement [`crate::ports`].

use std::sync::Arc;

use aws_types::SdkConfig;

use crate::adapters::aws::accounts::AccountSessions;
use crate::adapters::aws::eks::SdkEks;
use crate::adapters::aws::events::EventBridgeSink;
use crate::adapters::aws::iam::SdkIam;
use crate::adapters::aws::lock::{DynamoDbLock, NoLock};
use crate::adapters::kube::client::EksKubeConnector;
use crate::engine::Engine;
use crate::model::config::Config;
use crate::ports::{AccessEventSink, NoEvents, TrustLock};

pub mod aws;
pub mod kube;

/// The engine over the real AWS SDK and kube clients.
pub type SdkEngine = Engine<SdkIam, SdkEks, EksKubeConnector>;

/// Why the engine could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::model::config::ConfigError),
}

impl SdkEngine {
    /// Reads the configuration from the environment and the AWS SDK configuration the
    /// standard way (credentials chain, `AWS_REGION`, `AWS_ENDPOINT_URL*`), its HTTPS
    /// client trusting the compiled-in roots (the Lambdas; README, "TLS roots").
    pub async fn from_env() -> Result<(SdkEngine, SdkConfig), StartupError> {
        let config = Config::from_env()?;
        Ok(Self::from_config(config).await)
    }

    /// [`SdkEngine::from_env`] for a configuration already read.
    pub async fn from_config(config: Config) -> (SdkEngine, SdkConfig) {
        use crate::adapters::aws::sdk::{TrustRoots, load_sdk_config_with};
        let sdk = load_sdk_config_with(TrustRoots::Compiled).await;
        (SdkEngine::from_sdk(config, &sdk), sdk)
    }

    /// The engine over `sdk`; trust-policy writes take a DynamoDB lease when
    /// `config.trust_lock_table` is set.
    /// Every client gets [`crate::adapters::aws::sdk::timeout_config`] unless `sdk` sets its own.
    pub fn from_sdk(config: Config, sdk: &SdkConfig) -> SdkEngine {
        let sdk = &crate::adapters::aws::sdk::with_timeouts(sdk);
        let lock: Arc<dyn TrustLock> = match &config.trust_lock_table {
            Some(table) => Arc::new(DynamoDbLock::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table.clone(),
            )),
            None => Arc::new(NoLock),
        };
        let events: Arc<dyn AccessEventSink> = match &config.access_event_bus {
            Some(bus) => Arc::new(EventBridgeSink::new(
                aws_sdk_eventbridge::Client::new(sdk),
                bus.clone(),
            )),
            None => Arc::new(NoEvents),
        };
        // One session per member account, shared by EKS and the Kubernetes tokens.
        let sessions = Arc::new(AccountSessions::new(
            sdk.clone(),
            Some(config.member_role.clone()),
        ));
        Engine::new(
            config,
            SdkIam::new(aws_sdk_iam::Client::new(sdk)),
            SdkEks::with_sessions(Arc::clone(&sessions)),
            EksKubeConnector::with_sessions(sessions),
        )
        .with_trust_lock(lock)
        .with_access_events(events)
    }
}
