//! `get_block_range_for_timestamps` and `get_block_range_for_date`:
//! ethereum-etl 2.4.2's interpolation search (`GraphOperations` over
//! `(block number, timestamp)` points, block 1 to `latest`, with its point
//! cache) for the first block at or after the start and the last block at or
//! before the end, printed as `start,end`.

use crate::error::{ExportError, Result};
use crate::pyvalue::PyValue;
use crate::rpc::{Call, Failure, RpcClient};
use crate::sink::{Output, SharedStdout};

/// A block as a point of the timestamp graph.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: i128,
    y: i128,
}

/// Fetches blocks for the search and remembers every point seen.
struct Graph<'a> {
    client: &'a RpcClient,
    cached: Vec<Point>,
}

fn quantity(block: &PyValue, key: &str, label: &str) -> std::result::Result<i128, Failure> {
    block
        .get(key)
        .and_then(PyValue::as_str)
        .and_then(|s| i128::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| Failure::Fatal(format!("{label}: no hex {key:?} in the block")))
}

impl Graph<'_> {
    async fn point(&mut self, block: &str) -> Result<Point> {
        let label = format!("block {block}");
        let call = Call {
            method: "eth_getBlockByNumber",
            params: PyValue::List(vec![block.into(), PyValue::Bool(false)]),
            label: label.clone(),
        };
        let point = self
            .client
            .batch(&label, &[call], |r| {
                Ok(Point {
                    x: quantity(&r[0], "number", &label)?,
                    y: quantity(&r[0], "timestamp", &label)?,
                })
            })
            .await?;
        self.cached.push(point);
        Ok(point)
    }

    /// `get_bounds_for_y_coordinate`; `Ok(None)` is ethereum-etl's `OutOfBoundsError`.
    async fn bounds(&mut self, y: i128) -> Result<Option<(i128, i128)>> {
        let (mut start, mut end) = match find_best_bounds(y, &self.cached) {
            Some(b) => b,
            None => (self.point("0x1").await?, self.point("latest").await?),
        };
        loop {
            if y < start.y || y > end.y {
                return Ok(None);
            }
            if y == start.y {
                return Ok(Some((start.x, start.x)));
            }
            if y == end.y {
                return Ok(Some((end.x, end.x)));
            }
            if end.x - start.x <= 1 {
                return Ok(Some((start.x, end.x)));
            }
            let e1 = self
                .point(&hex(bound(interpolate(start, end, y)?, start.x, end.x)))
                .await?;
            let (a, b) = if e1.y < y { (start, e1) } else { (e1, end) };
            let e2 = self
                .point(&hex(bound(interpolate(a, b, y)?, start.x, end.x)))
                .await?;
            (start, end) = find_best_bounds(y, &[start, e1, e2, end]).ok_or_else(|| {
                ExportError::Data(format!("Unable to find bounds for y coordinate {y}"))
            })?;
        }
    }
}

fn hex(x: i128) -> String {
    format!("{x:#x}")
}

fn find_best_bounds(y: i128, points: &[Point]) -> Option<(Point, Point)> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.y);
    sorted
        .windows(2)
        .find(|w| w[0].y <= y && y <= w[1].y)
        .map(|w| (w[0], w[1]))
}

/// `int((y - y1) * (x2 - x1) / (y2 - y1) + x1)` with Python's float division.
fn interpolate(p1: Point, p2: Point, y: i128) -> Result<i128> {
    if p1.y == p2.y {
        return Err(ExportError::Data(format!(
            "The y coordinate for points is the same ({},{}), ({},{})",
            p1.x, p1.y, p2.x, p2.y
        )));
    }
    let x = ((y - p1.y) * (p2.x - p1.x)) as f64 / (p2.y - p1.y) as f64 + p1.x as f64;
    Ok(x.trunc() as i128)
}

fn bound(x: i128, a: i128, b: i128) -> i128 {
    let (lo, hi) = if a > b { (b, a) } else { (a, b) };
    if x <= lo {
        lo + 1
    } else if x >= hi {
        hi - 1
    } else {
        x
    }
}

/// `EthService.get_block_range_for_timestamps`.
pub async fn block_range_for_timestamps(
    client: &RpcClient,
    start: i128,
    end: i128,
) -> Result<(i128, i128)> {
    if start > end {
        return Err(ExportError::Usage(
            "start_timestamp must be lesser than end_timestamp".into(),
        ));
    }
    let mut graph = Graph {
        client,
        cached: Vec::new(),
    };
    let start_bounds = graph.bounds(start).await?.unwrap_or((0, 0));
    let end_bounds = graph.bounds(end).await?.ok_or_else(|| {
        ExportError::Data("The existing blocks do not completely cover the given time range".into())
    })?;
    if start_bounds == end_bounds && start_bounds.0 != start_bounds.1 {
        return Err(ExportError::Data(
            "The given timestamp range does not cover any blocks".into(),
        ));
    }
    let start_block = if start_bounds.1 == 1 {
        0
    } else {
        start_bounds.1
    };
    Ok((start_block, end_bounds.0))
}

/// The first and last second of a `YYYY-MM-DD` day, UTC.
pub fn day_timestamps(date: &str) -> Result<(i128, i128)> {
    let start = i128::from(day_number(date)?) * 86_400;
    Ok((start, start + 86_399))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (`strptime('%Y-%m-%d')`).
pub fn day_number(date: &str) -> Result<i64> {
    let bad = || {
        ExportError::Usage(format!(
            "Invalid value for '-d' / '--date': {date:?} does not match the format '%Y-%m-%d'"
        ))
    };
    let mut parts = date.split('-');
    let mut next = |max: i64| -> Result<i64> {
        let p = parts.next().ok_or_else(bad)?;
        let v: i64 = p.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 4 || !(1..=max).contains(&v) {
            return Err(bad());
        }
        Ok(v)
    };
    let (y, m, d) = (next(9999)?, next(12)?, next(31)?);
    if parts.next().is_some() || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's `civil_from_days`).
pub fn date_string(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes `start,end` and a newline to `output`.
pub fn write_range(output: &str, (start, end): (i128, i128)) -> Result<()> {
    let mut out = Output::create(output, &SharedStdout::default())?;
    out.write_all(format!("{start},{end}\n").as_bytes())?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day_timestamps("1970-01-01").unwrap(), (0, 86_399));
        assert_eq!(day_timestamps("2018-01-01").unwrap().0, 1_514_764_800);
        assert_eq!(day_timestamps("2024-02-29").unwrap().0, 1_709_164_800);
        for day in ["1970-01-01", "2000-02-29", "2021-06-03", "2100-12-31"] {
            assert_eq!(date_string(day_number(day).unwrap()), day);
        }
        for bad in ["2023-02-29", "2018-13-01", "2018-1", "x", "2018-01-01-01"] {
            assert_eq!(day_timestamps(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn interpolation_matches_python() {
        let (a, b) = (Point { x: 1, y: 100 }, Point { x: 11, y: 200 });
        assert_eq!(interpolate(a, b, 155).unwrap(), 6);
        assert_eq!(bound(1, 1, 11), 2);
        assert_eq!(bound(11, 1, 11), 10);
        assert_eq!(find_best_bounds(150, &[b, a]), Some((a, b)));
        assert_eq!(find_best_bounds(250, &[a, b]), None);
    }
}
