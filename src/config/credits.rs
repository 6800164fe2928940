//! An upstream's `[upstreams.credits]` table: what each call costs on a paid provider's bill
//! (Alchemy compute units, Infura credits, QuickNode API credits), the plan's per-second
//! and per-month ceilings, and the providers' published per-method cost tables that the
//! costs default to. Pure: [`CreditsConfig::costs`] resolves the lookup the request path
//! uses ([`Costs::of`]); the month's accounting is `upstream::credits`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::ConfigError;

/// The cost table used when `table` is not set: every call costs one, as a plan that
/// counts requests bills them.
pub const DEFAULT_COST_TABLE: CostTable = CostTable::Calls;

/// What one call of a method Alchemy's table does not list costs. Alchemy publishes no
/// fallback; 20 CU is the commonest figure in its table (blocks, receipts, balances, code).
pub const DEFAULT_ALCHEMY_COST: u32 = 20;
/// What one call of a method Infura's tables do not list costs: Infura's own documented
/// fallback ("Initially set to 80 credits", Credit costs page, see [`INFURA_COSTS`]).
pub const DEFAULT_INFURA_COST: u32 = 80;
/// What one call of a method QuickNode's table does not list costs: the Ethereum chain's
/// "All methods" figure on QuickNode's API Credits page (see [`QUICKNODE_COSTS`]).
pub const DEFAULT_QUICKNODE_COST: u32 = QUICKNODE_BASE;
/// What every call costs with `table = "calls"`.
pub const DEFAULT_CALL_COST: u32 = 1;

/// QuickNode's Ethereum figure for ordinary methods.
const QUICKNODE_BASE: u32 = 20;
/// QuickNode's "Advanced APIs" (Trace & Debug, txpool): 2x the chain's figure.
const QUICKNODE_ADVANCED: u32 = 2 * QUICKNODE_BASE;
/// QuickNode's "Large Calls" (`trace_replayBlockTransactions`, `trace_replayTransaction`,
/// `txpool_content`): 4x the chain's figure.
const QUICKNODE_LARGE: u32 = 4 * QUICKNODE_BASE;

/// Alchemy compute units per call on Ethereum, sorted by method name. Defaults a user
/// overrides in `[upstreams.credits.costs]`.
///
/// Source: "Compute Unit Costs", <https://www.alchemy.com/docs/reference/compute-unit-costs>
/// (section "EVM: Standard JSON-RPC Methods", the CU column), and for the trace and debug
/// methods their reference pages (<https://www.alchemy.com/docs/chains/trace-api/...>,
/// `.../debug-api/...`). Alchemy's throughput CU (what counts against the per-second limit)
/// is higher for a few methods (`eth_getBlockReceipts` 500, `eth_sendRawTransaction` 250,
/// `debug_*` 1000); this table holds the billed CU.
///
/// Not listed, for want of a current published figure: `trace_replayBlockTransactions`
/// (its reference page names no CU; Alchemy's 2021 table priced it at 2983), which costs
/// [`DEFAULT_ALCHEMY_COST`] unless overridden.
pub const ALCHEMY_COSTS: &[(&str, u32)] = &[
    ("debug_traceBlockByHash", 40),
    ("debug_traceBlockByNumber", 40),
    ("debug_traceCall", 40),
    ("debug_traceTransaction", 40),
    ("eth_accounts", 10),
    ("eth_blobBaseFee", 10),
    ("eth_blockNumber", 10),
    ("eth_call", 26),
    ("eth_callMany", 20),
    ("eth_chainId", 0),
    ("eth_createAccessList", 10),
    ("eth_estimateGas", 20),
    ("eth_feeHistory", 10),
    ("eth_gasPrice", 20),
    ("eth_getAccount", 20),
    ("eth_getBalance", 20),
    ("eth_getBlockByHash", 20),
    ("eth_getBlockByNumber", 20),
    ("eth_getBlockReceipts", 20),
    ("eth_getBlockTransactionCountByHash", 20),
    ("eth_getBlockTransactionCountByNumber", 20),
    ("eth_getCode", 20),
    ("eth_getFilterChanges", 20),
    ("eth_getFilterLogs", 60),
    ("eth_getLogs", 60),
    ("eth_getProof", 20),
    ("eth_getStorageAt", 20),
    ("eth_getTransactionByBlockHashAndIndex", 20),
    ("eth_getTransactionByBlockNumberAndIndex", 20),
    ("eth_getTransactionByHash", 20),
    ("eth_getTransactionCount", 20),
    ("eth_getTransactionReceipt", 20),
    ("eth_getUncleByBlockHashAndIndex", 20),
    ("eth_getUncleByBlockNumberAndIndex", 20),
    ("eth_getUncleCountByBlockHash", 20),
    ("eth_getUncleCountByBlockNumber", 20),
    ("eth_maxPriorityFeePerGas", 10),
    ("eth_newBlockFilter", 20),
    ("eth_newFilter", 20),
    ("eth_newPendingTransactionFilter", 20),
    ("eth_protocolVersion", 0),
    ("eth_sendRawTransaction", 40),
    ("eth_simulateV1", 40),
    ("eth_subscribe", 10),
    ("eth_syncing", 0),
    ("eth_uninstallFilter", 10),
    ("eth_unsubscribe", 10),
    ("net_listening", 0),
    ("net_version", 0),
    ("trace_block", 20),
    ("trace_transaction", 40),
    ("web3_clientVersion", 20),
    ("web3_sha3", 20),
];

/// Infura credits per call on Ethereum (its 2024 credit pricing), sorted by method name.
/// Defaults a user overrides in `[upstreams.credits.costs]`. Infura's quota is per day;
/// `per_month` counts a calendar month.
///
/// Source: "Credit costs" (MetaMask Developer / Infura docs),
/// <https://docs.metamask.io/services/get-started/pricing/credit-cost/> (sections "Standard
/// Ethereum-compliant JSON-RPC methods", "Trace methods", "Filter methods", "Debug
/// methods"). `trace_replayBlockTransactions` is in none of them: it is listed at Infura's
/// documented fallback, [`DEFAULT_INFURA_COST`].
pub const INFURA_COSTS: &[(&str, u32)] = &[
    ("debug_storageRangeAt", 1000),
    ("debug_traceBlock", 1000),
    ("debug_traceBlockByHash", 1000),
    ("debug_traceBlockByNumber", 1000),
    ("debug_traceCall", 1000),
    ("debug_traceTransaction", 1000),
    ("eth_accounts", 80),
    ("eth_blobBaseFee", 300),
    ("eth_blockNumber", 80),
    ("eth_call", 80),
    ("eth_chainId", 5),
    ("eth_createAccessList", 80),
    ("eth_estimateGas", 300),
    ("eth_feeHistory", 80),
    ("eth_gasPrice", 80),
    ("eth_getBalance", 80),
    ("eth_getBlockByHash", 80),
    ("eth_getBlockByNumber", 80),
    ("eth_getBlockReceipts", 1000),
    ("eth_getBlockTransactionCountByHash", 150),
    ("eth_getBlockTransactionCountByNumber", 150),
    ("eth_getCode", 80),
    ("eth_getFilterChanges", 140),
    ("eth_getFilterLogs", 255),
    ("eth_getLogs", 255),
    ("eth_getProof", 150),
    ("eth_getStorageAt", 80),
    ("eth_getTransactionByBlockHashAndIndex", 150),
    ("eth_getTransactionByBlockNumberAndIndex", 150),
    ("eth_getTransactionByHash", 80),
    ("eth_getTransactionCount", 80),
    ("eth_getTransactionReceipt", 80),
    ("eth_getUncleByBlockHashAndIndex", 150),
    ("eth_getUncleByBlockNumberAndIndex", 150),
    ("eth_getUncleCountByBlockHash", 150),
    ("eth_getUncleCountByBlockNumber", 150),
    ("eth_maxPriorityFeePerGas", 80),
    ("eth_newBlockFilter", 80),
    ("eth_newFilter", 80),
    ("eth_protocolVersion", 5),
    ("eth_sendRawTransaction", 80),
    ("eth_subscribe", 5),
    ("eth_syncing", 5),
    ("eth_uninstallFilter", 80),
    ("eth_unsubscribe", 10),
    ("net_listening", 5),
    ("net_peerCount", 80),
    ("net_version", 5),
    ("trace_block", 300),
    ("trace_call", 300),
    ("trace_callMany", 300),
    ("trace_filter", 300),
    ("trace_replayBlockTransactions", DEFAULT_INFURA_COST),
    ("trace_transaction", 300),
    ("web3_clientVersion", 80),
];

/// QuickNode API credits per call on Ethereum, sorted by method name. Defaults a user
/// overrides in `[upstreams.credits.costs]`.
///
/// Source: "API Credits", <https://www.quicknode.com/api-credits/eth>: Ethereum "All
/// methods" 20; "Advanced APIs" (Trace & Debug, txpool) 2x the chain's figure; "Large
/// Calls" (`trace_replayBlockTransactions`, `trace_replayTransaction`, `txpool_content`) 4x.
/// The page's per-method exceptions list ("Individual API Credits") could not be read; a
/// method priced there differently is not reflected here. Ordinary methods are listed at the
/// chain's figure so the lookup is explicit.
pub const QUICKNODE_COSTS: &[(&str, u32)] = &[
    ("debug_traceBlock", QUICKNODE_ADVANCED),
    ("debug_traceBlockByHash", QUICKNODE_ADVANCED),
    ("debug_traceBlockByNumber", QUICKNODE_ADVANCED),
    ("debug_traceCall", QUICKNODE_ADVANCED),
    ("debug_traceTransaction", QUICKNODE_ADVANCED),
    ("eth_blockNumber", QUICKNODE_BASE),
    ("eth_call", QUICKNODE_BASE),
    ("eth_chainId", QUICKNODE_BASE),
    ("eth_getBalance", QUICKNODE_BASE),
    ("eth_getBlockByHash", QUICKNODE_BASE),
    ("eth_getBlockByNumber", QUICKNODE_BASE),
    ("eth_getBlockReceipts", QUICKNODE_BASE),
    ("eth_getCode", QUICKNODE_BASE),
    ("eth_getFilterChanges", QUICKNODE_BASE),
    ("eth_getFilterLogs", QUICKNODE_BASE),
    ("eth_getLogs", QUICKNODE_BASE),
    ("eth_getTransactionByHash", QUICKNODE_BASE),
    ("eth_getTransactionReceipt", QUICKNODE_BASE),
    ("eth_newFilter", QUICKNODE_BASE),
    ("eth_syncing", QUICKNODE_BASE),
    ("eth_uninstallFilter", QUICKNODE_BASE),
    ("net_version", QUICKNODE_BASE),
    ("trace_block", QUICKNODE_ADVANCED),
    ("trace_call", QUICKNODE_ADVANCED),
    ("trace_callMany", QUICKNODE_ADVANCED),
    ("trace_filter", QUICKNODE_ADVANCED),
    ("trace_get", QUICKNODE_ADVANCED),
    ("trace_rawTransaction", QUICKNODE_ADVANCED),
    ("trace_replayBlockTransactions", QUICKNODE_LARGE),
    ("trace_replayTransaction", QUICKNODE_LARGE),
    ("trace_transaction", QUICKNODE_ADVANCED),
    ("txpool_content", QUICKNODE_LARGE),
    ("txpool_inspect", QUICKNODE_ADVANCED),
    ("txpool_status", QUICKNODE_ADVANCED),
];

/// Whose published per-method costs an upstream's calls default to.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CostTable {
    /// Alchemy compute units ([`ALCHEMY_COSTS`]).
    Alchemy,
    /// Infura credits ([`INFURA_COSTS`]).
    Infura,
    /// QuickNode API credits ([`QUICKNODE_COSTS`]).
    QuickNode,
    /// Every call costs [`DEFAULT_CALL_COST`]: a plan that counts requests.
    Calls,
}

impl CostTable {
    /// The name the configuration uses (`"alchemy"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Alchemy => "alchemy",
            Self::Infura => "infura",
            Self::QuickNode => "quicknode",
            Self::Calls => "calls",
        }
    }

    /// The table's listed methods and costs, sorted by method name.
    pub fn entries(self) -> &'static [(&'static str, u32)] {
        match self {
            Self::Alchemy => ALCHEMY_COSTS,
            Self::Infura => INFURA_COSTS,
            Self::QuickNode => QUICKNODE_COSTS,
            Self::Calls => &[],
        }
    }

    /// What a method the table does not list costs.
    pub fn default_cost(self) -> u32 {
        match self {
            Self::Alchemy => DEFAULT_ALCHEMY_COST,
            Self::Infura => DEFAULT_INFURA_COST,
            Self::QuickNode => DEFAULT_QUICKNODE_COST,
            Self::Calls => DEFAULT_CALL_COST,
        }
    }

    /// What one call of `method` costs by this table (binary search; unlisted: the default).
    pub fn cost(self, method: &str) -> u32 {
        let entries = self.entries();
        match entries.binary_search_by(|(name, _)| (*name).cmp(method)) {
            Ok(i) => entries[i].1,
            Err(_) => self.default_cost(),
        }
    }
}

/// `[upstreams.credits]`: the upstream bills in compute units / credits. Its calls cost what
/// `table` says, `costs` overriding; `per_second` and `per_month` bound what is spent.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreditsConfig {
    /// Whose published costs the calls default to (unset: every call costs one).
    #[serde(default = "default_cost_table")]
    pub table: CostTable,
    /// Compute units per second, a hard ceiling (the plan's throughput); unset: none.
    #[serde(default)]
    pub per_second: Option<u32>,
    /// Compute units per calendar month (UTC); unset: none.
    #[serde(default)]
    pub per_month: Option<u64>,
    /// Cost overrides, method name to cost; may name methods the table lacks.
    #[serde(default)]
    pub costs: BTreeMap<String, u32>,
}

impl Default for CreditsConfig {
    fn default() -> Self {
        Self {
            table: DEFAULT_COST_TABLE,
            per_second: None,
            per_month: None,
            costs: BTreeMap::new(),
        }
    }
}

impl CreditsConfig {
    /// Checks the values the budgets rely on; keys are named
    /// `upstreams[<upstream_name>].credits.<field>`.
    pub fn check(&self, upstream_name: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("upstreams[{upstream_name}].credits.{field}");
        if self.per_second == Some(0) {
            return Err(ConfigError::new(
                key("per_second"),
                "must be 1 or more (got 0); leave it out for no per-second ceiling",
            ));
        }
        if self.per_month == Some(0) {
            return Err(ConfigError::new(
                key("per_month"),
                "must be 1 or more (got 0); leave it out for no monthly budget",
            ));
        }
        if let Some(bad) = self.costs.keys().find(|m| !is_method_name(m)) {
            return Err(ConfigError::new(
                key("costs"),
                format!("{bad:?} is not a JSON-RPC method name (letters, digits and _)"),
            ));
        }
        Ok(())
    }

    /// The resolved per-method costs: overrides, else the table, else its default.
    pub fn costs(&self) -> Costs {
        Costs {
            table: self.table,
            overrides: self.costs.iter().map(|(m, c)| (m.clone(), *c)).collect(),
        }
    }
}

/// `table`'s default for serde.
fn default_cost_table() -> CostTable {
    DEFAULT_COST_TABLE
}

/// Whether `name` looks like a JSON-RPC method name: non-empty ASCII letters, digits, `_`.
fn is_method_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What each call of one upstream costs, resolved once from its [`CreditsConfig`]: a hash
/// lookup of the overrides, then a binary search of the sorted table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Costs {
    /// The published table behind the overrides.
    table: CostTable,
    /// The user's per-method costs, which win over the table.
    overrides: HashMap<String, u32>,
}

impl Costs {
    /// The table the costs default to.
    pub fn table(&self) -> CostTable {
        self.table
    }

    /// What one call of `method` costs: the override, else the table, else its default.
    pub fn of(&self, method: &str) -> u32 {
        match self.overrides.get(method) {
            Some(cost) => *cost,
            None => self.table.cost(method),
        }
    }

    /// What a batch of calls costs, each item counted (as providers bill batches).
    pub fn of_batch<'a>(&self, methods: impl IntoIterator<Item = &'a str>) -> u64 {
        methods
            .into_iter()
            .fold(0u64, |sum, m| sum.saturating_add(u64::from(self.of(m))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ethereum-etl and nodewatch send.
    const SENT: &[&str] = &[
        "eth_blockNumber",
        "eth_chainId",
        "net_version",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getBlockReceipts",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getLogs",
        "eth_call",
        "eth_getCode",
        "eth_getBalance",
        "eth_syncing",
        "trace_block",
        "trace_transaction",
        "trace_replayBlockTransactions",
        "debug_traceBlockByNumber",
        "debug_traceTransaction",
        "eth_newFilter",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_uninstallFilter",
    ];

    const PRICED: [CostTable; 3] = [CostTable::Alchemy, CostTable::Infura, CostTable::QuickNode];

    fn parse(toml: &str) -> Result<CreditsConfig, String> {
        ::config::Config::builder()
            .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_table_is_sorted_without_duplicates() {
        for table in PRICED {
            for pair in table.entries().windows(2) {
                assert!(pair[0].0 < pair[1].0, "{}: {pair:?}", table.name());
            }
            assert!(table.entries().iter().all(|(m, _)| is_method_name(m)));
        }
    }

    #[test]
    fn every_table_prices_what_exporters_send() {
        for table in PRICED {
            for method in SENT {
                // No current published Alchemy figure: it takes the table default.
                if table == CostTable::Alchemy && *method == "trace_replayBlockTransactions" {
                    continue;
                }
                let listed = table.entries().iter().any(|(m, _)| m == method);
                assert!(listed, "{} lacks {method}", table.name());
            }
        }
    }

    #[test]
    fn published_figures_are_looked_up() {
        let cost = |table: CostTable, method| table.cost(method);
        assert_eq!(cost(CostTable::Alchemy, "eth_getLogs"), 60);
        assert_eq!(cost(CostTable::Alchemy, "eth_chainId"), 0);
        assert_eq!(cost(CostTable::Alchemy, "debug_traceTransaction"), 40);
        assert_eq!(cost(CostTable::Infura, "eth_getBlockReceipts"), 1000);
        assert_eq!(cost(CostTable::Infura, "eth_getLogs"), 255);
        assert_eq!(cost(CostTable::QuickNode, "eth_getLogs"), 20);
        assert_eq!(cost(CostTable::QuickNode, "trace_block"), 40);
        assert_eq!(
            cost(CostTable::QuickNode, "trace_replayBlockTransactions"),
            80
        );
    }

    #[test]
    fn unknown_methods_cost_the_table_default() {
        for table in [
            CostTable::Alchemy,
            CostTable::Infura,
            CostTable::QuickNode,
            CostTable::Calls,
        ] {
            assert_eq!(table.cost("zz_unknown"), table.default_cost());
            assert_eq!(table.cost(""), table.default_cost());
        }
        assert_eq!(CostTable::Infura.cost("zz_unknown"), 80);
        assert_eq!(CostTable::Alchemy.cost("trace_replayBlockTransactions"), 20);
    }

    #[test]
    fn calls_cost_one_each() {
        let costs = CreditsConfig::default().costs();
        assert_eq!(costs.table(), CostTable::Calls);
        for method in SENT.iter().chain(&["anything_else"]) {
            assert_eq!(costs.of(method), 1);
        }
        assert_eq!(costs.of_batch(SENT.iter().copied()), SENT.len() as u64);
    }

    #[test]
    fn overrides_win_and_may_add_methods() {
        let config = CreditsConfig {
            table: CostTable::Alchemy,
            costs: BTreeMap::from([
                ("eth_getLogs".to_string(), 75),
                ("custom_method".to_string(), 7),
            ]),
            ..CreditsConfig::default()
        };
        let costs = config.costs();
        assert_eq!(costs.of("eth_getLogs"), 75);
        assert_eq!(costs.of("custom_method"), 7);
        assert_eq!(costs.of("eth_call"), 26);
        let batch = ["eth_getLogs", "eth_call", "eth_chainId", "custom_method"];
        assert_eq!(costs.of_batch(batch), 75 + 26 + 7);
        assert_eq!(costs.of_batch([]), 0);
    }

    #[test]
    fn check_errors_name_their_keys() {
        let bad = |f: fn(&mut CreditsConfig)| {
            let mut c = CreditsConfig::default();
            f(&mut c);
            c.check("alchemy").unwrap_err().to_string()
        };
        let e = bad(|c| c.per_second = Some(0));
        assert!(e.contains("upstreams[alchemy].credits.per_second"), "{e}");
        let e = bad(|c| c.per_month = Some(0));
        assert!(e.contains("upstreams[alchemy].credits.per_month"), "{e}");
        for name in ["", "eth getLogs", "eth-getLogs", "eth_getLögs"] {
            let mut c = CreditsConfig::default();
            c.costs.insert(name.to_string(), 1);
            let e = c.check("alchemy").unwrap_err().to_string();
            assert!(e.contains("upstreams[alchemy].credits.costs"), "{e}");
        }
        let good = CreditsConfig {
            per_second: Some(1),
            per_month: Some(1),
            costs: BTreeMap::from([("eth_getLogs".to_string(), 0)]),
            ..CreditsConfig::default()
        };
        assert_eq!(good.check("alchemy"), Ok(()));
    }

    #[test]
    fn a_toml_table_parses_with_method_names_kept() {
        let config = parse(
            "table = \"alchemy\"\nper_second = 330\nper_month = 300000000\n\
             [costs]\neth_getLogs = 75\n",
        )
        .unwrap();
        assert_eq!(config.table, CostTable::Alchemy);
        assert_eq!(config.per_second, Some(330));
        assert_eq!(config.per_month, Some(300_000_000));
        assert_eq!(config.costs.get("eth_getLogs"), Some(&75));
        assert_eq!(config.costs().of("eth_getLogs"), 75);
        assert_eq!(
            parse("table = \"quicknode\"").unwrap().table,
            CostTable::QuickNode
        );
        assert_eq!(parse("").unwrap(), CreditsConfig::default());
    }

    #[test]
    fn bad_toml_is_refused() {
        assert!(parse("table = \"ankr\"").unwrap_err().contains("ankr"));
        assert!(parse("per_day = 5").unwrap_err().contains("per_day"));
        assert!(parse("per_month = -1").is_err());
        assert!(parse("[costs]\neth_call = \"x\"").is_err());
    }
}
