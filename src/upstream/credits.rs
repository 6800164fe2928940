//! The month's compute-unit budget of one upstream (`credits.per_month`): what has been
//! spent in the current calendar month (UTC), refusing a call that would pass the budget.
//! Pure and time-injected: every call takes the wall-clock `now` as a [`SystemTime`], so
//! tests cross month boundaries without waiting. A fleet's shared count (Redis `INCRBY`)
//! is folded in with [`MonthBudget::observe_total`]; the request path never waits on it.
//!
//! Month arithmetic is on unix seconds in UTC (Howard Hinnant's `days_from_civil` and
//! `civil_from_days`); no date crate is needed.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sync::lock;

/// Seconds in a UTC day (no leap seconds in unix time).
const SECONDS_PER_DAY: u64 = 86_400;

/// A calendar month, `(year, month)` with `month` in 1..=12.
pub type Month = (i32, u32);

/// The compute units one upstream may spend per calendar month (UTC), and what it spent.
#[derive(Debug)]
pub struct MonthBudget {
    /// Compute units per month (`credits.per_month`).
    budget: u64,
    /// The month being counted and its spending; one lock, so a rollover and a spend
    /// cannot interleave.
    state: Mutex<Spent>,
}

/// The month being counted and what was spent in it.
#[derive(Debug, Clone, Copy)]
struct Spent {
    /// The calendar month the count is for.
    month: Month,
    /// Compute units spent in it (this sidecar's, or the fleet's once observed).
    units: u64,
}

/// A snapshot of a [`MonthBudget`] for `/status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthView {
    /// Compute units per month.
    pub budget: u64,
    /// Compute units spent this month.
    pub spent: u64,
    /// The month counted.
    pub month: Month,
    /// Unix seconds at which the next month starts and the count returns to zero.
    pub resets_at: u64,
}

/// A call refused because it would pass the month's budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "monthly compute-unit budget spent: {spent} of {budget} CU used, this request needs \
     {cost}; resets {}",
    rfc3339(*.resets_at_unix)
)]
pub struct BudgetSpent {
    /// Compute units per month.
    pub budget: u64,
    /// Compute units already spent this month.
    pub spent: u64,
    /// What the refused call (or batch) costs.
    pub cost: u64,
    /// Unix seconds at which the next month starts.
    pub resets_at_unix: u64,
}

// === impl MonthBudget ===

impl MonthBudget {
    /// A budget of `budget` compute units per month, nothing spent in `now`'s month.
    pub fn new(budget: u64, now: SystemTime) -> Self {
        Self {
            budget,
            state: Mutex::new(Spent {
                month: month_of(now),
                units: 0,
            }),
        }
    }

    /// Compute units per month.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Spends `cost` in `now`'s month (a new month starts from zero), or refuses, spending
    /// nothing, when that would pass the budget: also a call costing more than the whole
    /// budget, and any call once a fleet's total has passed it.
    pub fn try_spend(&self, cost: u64, now: SystemTime) -> Result<(), BudgetSpent> {
        let mut state = lock(&self.state);
        state.roll_to(month_of(now));
        match state.units.checked_add(cost) {
            Some(after) if after <= self.budget => {
                state.units = after;
                Ok(())
            }
            _ => Err(BudgetSpent {
                budget: self.budget,
                spent: state.units,
                cost,
                resets_at_unix: next_month_start(state.month),
            }),
        }
    }

    /// Folds in the fleet-wide total the shared store returned for `month`: the larger of it
    /// and what is known counts. A total for an older month is ignored; one for a newer
    /// month starts that month. A month outside 1..=12 is ignored.
    pub fn observe_total(&self, month: Month, total: u64) {
        if !(1..=12).contains(&month.1) {
            return;
        }
        let mut state = lock(&self.state);
        state.roll_to(month);
        if state.month == month {
            state.units = state.units.max(total);
        }
    }

    /// The budget, what is spent and when it resets, as of `now`.
    pub fn view(&self, now: SystemTime) -> MonthView {
        let mut state = lock(&self.state);
        state.roll_to(month_of(now));
        MonthView {
            budget: self.budget,
            spent: state.units,
            month: state.month,
            resets_at: next_month_start(state.month),
        }
    }
}

impl Spent {
    /// Starts counting `month` from zero when it is later than the one counted; an earlier
    /// one (a clock stepped back) keeps the count.
    fn roll_to(&mut self, month: Month) {
        if month > self.month {
            *self = Self { month, units: 0 };
        }
    }
}

// === month arithmetic ===

/// The month key of `now` for shared-store key names: `"2026-12"`.
pub fn month_key(now: SystemTime) -> String {
    let (year, month) = month_of(now);
    format!("{year:04}-{month:02}")
}

/// The UTC calendar month `now` falls in (a time before 1970 counts as January 1970).
pub fn month_of(now: SystemTime) -> Month {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, _) = civil_from_days(days_since_epoch(secs));
    (year, month)
}

/// Unix seconds at which the month after `month` starts (0 for months before 1970).
pub fn next_month_start(month: Month) -> u64 {
    let (year, month) = (i64::from(month.0), month.1.clamp(1, 12));
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let days = days_from_civil(year, month, 1);
    u64::try_from(days).map_or(0, |d| d.saturating_mul(SECONDS_PER_DAY))
}

/// Whole days from 1970-01-01 to `secs` (fits an `i64` for every `u64`).
fn days_since_epoch(secs: u64) -> i64 {
    i64::try_from(secs / SECONDS_PER_DAY).unwrap_or(i64::MAX)
}

/// Days from 1970-01-01 to `year-month-day` in the proleptic Gregorian calendar
/// (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = (month + 9) % 12; // March is 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `(year, month, day)` of the day `days` after 1970-01-01 (Hinnant's `civil_from_days`);
/// a year past `i32` saturates.
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let days = days.saturating_add(719_468);
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    let year = i32::try_from(year).unwrap_or(i32::MAX);
    // Both are small and positive by construction (1..=12, 1..=31).
    (year, month as u32, day as u32)
}

/// `secs` as RFC 3339 in UTC, `2027-01-01T00:00:00Z`. Written here rather than with
/// `humantime`, whose formatter fails (and `to_string` then panics) past year 9999.
fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days(days_since_epoch(secs));
    let of_day = secs % SECONDS_PER_DAY;
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The instant `year-month-day hh:mm:ss` UTC.
    fn at(year: i64, month: u32, day: u32, hms: (u64, u64, u64)) -> SystemTime {
        let days = u64::try_from(days_from_civil(year, month, day)).unwrap();
        let secs = days * SECONDS_PER_DAY + hms.0 * 3600 + hms.1 * 60 + hms.2;
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn last_second_of(year: i64, month: u32, day: u32) -> SystemTime {
        at(year, month, day, (23, 59, 59))
    }

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for days in [0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(i64::from(y), m, d), days);
        }
        // 2026-12-31T23:59:59Z is 1798761599.
        assert_eq!(
            last_second_of(2026, 12, 31),
            UNIX_EPOCH + Duration::from_secs(1_798_761_599)
        );
        assert_eq!(month_of(UNIX_EPOCH - Duration::from_secs(1)), (1970, 1));
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        assert_eq!(month_of(far).0, i32::MAX);
    }

    #[test]
    fn month_keys_and_resets() {
        assert_eq!(month_key(at(2026, 12, 15, (12, 0, 0))), "2026-12");
        assert_eq!(month_key(at(2027, 1, 1, (0, 0, 0))), "2027-01");
        assert_eq!(month_key(UNIX_EPOCH), "1970-01");
        let in_seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            next_month_start((2026, 12)),
            in_seconds(at(2027, 1, 1, (0, 0, 0)))
        );
        assert_eq!(
            next_month_start((2028, 2)),
            in_seconds(at(2028, 3, 1, (0, 0, 0)))
        );
        assert_eq!(next_month_start((1969, 6)), 0);
    }

    #[test]
    fn a_new_month_starts_from_zero() {
        // (last second of a month, first second of the next): Dec→Jan, leap and common Feb.
        let boundaries = [
            (last_second_of(2026, 12, 31), at(2027, 1, 1, (0, 0, 0))),
            (last_second_of(2028, 2, 29), at(2028, 3, 1, (0, 0, 0))),
            (last_second_of(2027, 2, 28), at(2027, 3, 1, (0, 0, 0))),
            (last_second_of(2026, 4, 30), at(2026, 5, 1, (0, 0, 0))),
        ];
        for (last, first) in boundaries {
            let budget = MonthBudget::new(100, last);
            budget.try_spend(100, last).unwrap();
            assert!(budget.try_spend(1, last).is_err());
            budget.try_spend(1, first).unwrap();
            let view = budget.view(first);
            assert_eq!((view.spent, view.month), (1, month_of(first)));
            assert_ne!(month_of(last), month_of(first));
        }
        let leap = MonthBudget::new(10, at(2028, 2, 29, (12, 0, 0)));
        assert_eq!(leap.view(at(2028, 2, 29, (12, 0, 0))).month, (2028, 2));
    }

    #[test]
    fn a_refusal_spends_nothing() {
        let now = at(2026, 12, 31, (10, 0, 0));
        let budget = MonthBudget::new(300_000_000, now);
        budget.try_spend(299_999_990, now).unwrap();
        let refused = budget.try_spend(26, now).unwrap_err();
        assert_eq!(
            refused,
            BudgetSpent {
                budget: 300_000_000,
                spent: 299_999_990,
                cost: 26,
                resets_at_unix: next_month_start((2026, 12)),
            }
        );
        assert_eq!(budget.view(now).spent, 299_999_990);
        budget.try_spend(10, now).unwrap();
        assert_eq!(budget.view(now).spent, 300_000_000);
        budget.try_spend(0, now).unwrap();
        assert!(budget.try_spend(u64::MAX, now).is_err());
    }

    #[test]
    fn a_call_larger_than_the_budget_is_refused() {
        let now = at(2026, 6, 1, (0, 0, 0));
        let budget = MonthBudget::new(100, now);
        assert!(budget.try_spend(101, now).is_err());
        assert_eq!(budget.view(now).spent, 0);
        assert!(MonthBudget::new(0, now).try_spend(1, now).is_err());
    }

    #[test]
    fn observed_totals_take_the_max_and_ignore_old_months() {
        let now = at(2026, 12, 10, (0, 0, 0));
        let budget = MonthBudget::new(1000, now);
        budget.try_spend(300, now).unwrap();
        budget.observe_total((2026, 12), 200);
        assert_eq!(budget.view(now).spent, 300);
        budget.observe_total((2026, 12), 700);
        assert_eq!(budget.view(now).spent, 700);
        budget.observe_total((2026, 11), 999);
        budget.observe_total((2026, 13), 999);
        assert_eq!(budget.view(now).spent, 700);
        // The fleet passed the budget: every further call is refused.
        budget.observe_total((2026, 12), 1200);
        assert!(budget.try_spend(0, now).is_err());
        // A newer month reported by the fleet starts that month.
        budget.observe_total((2027, 1), 5);
        let view = budget.view(now);
        assert_eq!((view.month, view.spent), ((2027, 1), 5));
    }

    #[test]
    fn the_refusal_reads_as_one_line() {
        let refused = BudgetSpent {
            budget: 300_000_000,
            spent: 299_999_990,
            cost: 26,
            resets_at_unix: next_month_start((2026, 12)),
        };
        assert_eq!(
            refused.to_string(),
            "monthly compute-unit budget spent: 299999990 of 300000000 CU used, this request \
             needs 26; resets 2027-01-01T00:00:00Z"
        );
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert!(rfc3339(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn the_view_shows_the_reset() {
        let now = at(2028, 2, 10, (0, 0, 0));
        let budget = MonthBudget::new(50, now);
        budget.try_spend(20, now).unwrap();
        let view = budget.view(now);
        assert_eq!(
            view,
            MonthView {
                budget: 50,
                spent: 20,
                month: (2028, 2),
                resets_at: next_month_start((2028, 2)),
            }
        );
        assert_eq!(rfc3339(view.resets_at), "2028-03-01T00:00:00Z");
    }
}
