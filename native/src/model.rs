//! Plain data of the engine: steps, entity logs, ledger entries, order state, decisions, rule
//! settings. Mirrors `streams/model.py` and `streams/engine/state.py` (state format 2).

/// The input stream an event came from (`streams.model.Source`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Orders,
    Payments,
    Inventory,
    Shipping,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Orders, Source::Payments, Source::Inventory, Source::Shipping];

    pub fn name(self) -> &'static str {
        match self {
            Source::Orders => "orders",
            Source::Payments => "payments",
            Source::Inventory => "inventory",
            Source::Shipping => "shipping",
        }
    }

    /// The event types in lifecycle order (`streams.model.LIFECYCLE`): a type's index is its rank.
    pub fn lifecycle(self) -> &'static [&'static str] {
        match self {
            Source::Orders => &["PLACED", "CANCELLED", "PAID"],
            Source::Payments => &["SUCCEEDED", "FAILED", "REFUNDED"],
            Source::Inventory => &["RESERVED", "CONFIRMED", "RELEASED"],
            Source::Shipping => &["CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"],
        }
    }

    pub fn rank_of(self, kind: &str) -> Option<i64> {
        self.lifecycle().iter().position(|k| *k == kind).map(|i| i as i64)
    }
}

// ranks (streams.rules.entities)
pub const PLACED: i64 = 0;
pub const ORDER_CANCELLED: i64 = 1;
pub const ORDER_PAID: i64 = 2;
pub const SUCCEEDED: i64 = 0;
pub const RESERVED: i64 = 0;
pub const CONFIRMED: i64 = 1;
pub const RELEASED: i64 = 2;
pub const CREATED: i64 = 0;

pub fn active_payment(rank: i64) -> bool {
    rank == SUCCEEDED
}
pub fn active_reservation(rank: i64) -> bool {
    rank == RESERVED || rank == CONFIRMED
}
pub fn live_shipment(rank: i64) -> bool {
    (0..=2).contains(&rank)
}
/// CREATED or DISPATCHED: a parcel on its way (CANCELLED_BUT_SHIPPED).
pub fn on_its_way(rank: i64) -> bool {
    rank == 0 || rank == 1
}
pub fn shipped(rank: i64) -> bool {
    rank == 1 || rank == 2
}

/// One line of an order or a shipment (unit_price only on orders).
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Option<i64>,
}

/// One event as an order's state keeps it (`streams.model.Step`).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub event_time: i64,
    pub rank: i64,
    pub event_id: String,
    pub sku: Option<String>,
    pub quantity: Option<i64>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub items: Vec<Item>,
    pub total_amount: Option<i64>,
    pub channel: Option<String>,
    pub user_id: Option<String>,
}

impl Step {
    /// A step with only the fields every event has (the others are set by its source's).
    pub fn new(event_time: i64, rank: i64, event_id: String) -> Self {
        Step {
            event_time,
            rank,
            event_id,
            sku: None,
            quantity: None,
            amount: None,
            currency: None,
            items: Vec::new(),
            total_amount: None,
            channel: None,
            user_id: None,
        }
    }

    pub fn lifecycle_key(&self) -> (i64, i64, &str) {
        (self.event_time, self.rank, &self.event_id)
    }
    pub fn trigger_key(&self) -> (i64, &str) {
        (self.event_time, &self.event_id)
    }
}

/// An input event as the engine needs it (the fields of `streams.model.Event`).
#[derive(Clone, Debug)]
pub struct Event {
    pub source: Source,
    pub entity_id: String,
    pub kind: String,
    pub step: Step,
}

/// An ordered map by insertion, like a Python dict (the state keeps few keys).
pub type Ordered<V> = Vec<(String, V)>;

pub fn get<'a, V>(map: &'a Ordered<V>, key: &str) -> Option<&'a V> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub fn get_mut<'a, V>(map: &'a mut Ordered<V>, key: &str) -> Option<&'a mut V> {
    map.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Insert or replace, keeping an existing key's position (Python's `d[k] = v`).
pub fn put<V>(map: &mut Ordered<V>, key: &str, value: V) {
    if let Some(slot) = get_mut(map, key) {
        *slot = value;
    } else {
        map.push((key.to_string(), value));
    }
}

/// An order's event logs (the part of the state the rules read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    pub orders: Vec<Step>,
    pub payments: Ordered<Vec<Step>>,
    pub reservations: Ordered<Vec<Step>>,
    pub shipments: Ordered<Vec<Step>>,
}

/// A mismatch the order ever opened (`streams.engine.state.LedgerEntry`).
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub mismatch_id: String,
    pub kind: String,
    pub rule: i64,
    pub subject_id: String,
    pub key: String,
    pub severity: String,
    pub decided_at: i64,
    pub trigger_time: i64,
    pub evidence: Vec<String>,
    pub details: Ordered<String>,
    pub command_id: Option<String>,
    pub status: String,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub frozen: bool,
}

pub const OPEN: &str = "OPEN";
pub const RESOLVED: &str = "RESOLVED";

/// The rest of an order's state: index entries, expiry, ledger, commands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Book {
    pub dues: Vec<i64>,
    pub expire_at: Option<i64>,
    pub ledger: Ordered<LedgerEntry>,
    pub commands: Vec<String>,
}

/// Everything the engine keeps for one order (state format 2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderState {
    pub order_id: String,
    pub logs: Logs,
    pub book: Book,
}

impl OrderState {
    pub fn new(order_id: &str) -> Self {
        OrderState { order_id: order_id.to_string(), ..Default::default() }
    }

    /// Whether some mismatch of the current history is OPEN (`OrderState.has_open`).
    pub fn has_open(&self) -> bool {
        self.book.ledger.iter().any(|(_, e)| e.status == OPEN && !e.frozen)
    }
}

/// One decision to make: at `due`, rule `rule` for `key`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decision {
    pub due: i64,
    pub rule: i64,
    pub key: String,
}

/// The rule settings (`streams.config.RuleConfig`), in ms: the two the engine reads, and
/// the thresholds the rule table's triggers name (`table::Trigger::delay`), by name.
#[derive(Clone, Debug)]
pub struct Rules {
    pub allowed_lateness: i64,
    pub state_retention: i64,
    pub settings: Vec<(&'static str, i64)>,
    /// what the rules file makes of each rule, by rule number - 1 (empty: the table's)
    pub own: Vec<Own>,
}

/// Where a rule's commands go (`streams.rulebook.CommandMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Shadow,
    Off,
}

/// One rule as the rules file leaves it (`RuleConfig.enabled`, `delay_of` where the file
/// gives the rule its own duration, `severity_of`, `mode_of`).
#[derive(Clone, Debug)]
pub struct Own {
    pub enabled: bool,
    pub delay: Option<i64>,
    pub severity: String,
    pub mode: Mode,
}

/// How an order's ledger of issued commands records an id that went out in shadow
/// (`rulebook.SHADOW_MARK`).
pub const SHADOW_MARK: &str = "shadow:";

/// The entry of the order's issued commands for a command_id that went out so
/// (`rulebook.ledger_key`).
pub fn ledger_key(command_id: &str, shadow: bool) -> String {
    if shadow { format!("{SHADOW_MARK}{command_id}") } else { command_id.to_string() }
}

impl Rules {
    /// The setting named `name` (None: not given).
    pub fn setting(&self, name: &str) -> Option<i64> {
        self.settings.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// What the rules file makes of rule `number` (None: the table's defaults).
    pub fn own(&self, number: i64) -> Option<&Own> {
        usize::try_from(number - 1).ok().and_then(|i| self.own.get(i))
    }
}

pub const FOREVER: i64 = 1 << 62;
