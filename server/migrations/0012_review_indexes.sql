-- Indexes for the review table's heaviest filters (issue 9, measured over
-- 3 million sightings in docs/PERFORMANCE.md).

-- A place and a period: one GiST over the point and the date as a third
-- dimension (days × 0.0001, so a day weighs about a 10 m step and a month
-- about a 300 m box), which the review filter tests with `&&&`. A GiST over
-- (territory, date, point) splits on the date first and only breaks ties on
-- the point, so a month was read whole before the box narrowed it (p95
-- 59.5 ms); in three dimensions a 500 m box and a month read about the rows
-- they hold. `territory_id` leads (btree_gist): it is the same for every
-- row of one territory, so GiST splits on the point and date beneath it.
-- It replaces the point-only index: a box alone is the same test with an
-- unbounded period, and QGIS's `geom && box` still uses the index through
-- its third column.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE FUNCTION review_place_time(geom geometry, at timestamptz) RETURNS geometry
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ST_MakePoint(ST_X(geom), ST_Y(geom), extract(epoch FROM at) / 86400 * 0.0001);

DROP INDEX sightings_geom_idx;
CREATE INDEX sightings_review_place_idx ON sightings
    USING gist (territory_id, review_place_time(geom, event_date) gist_geometry_ops_nd, geom);

-- Duplicate proposals walk the review order and probe each sighting's taxon
-- and time window: with review_seq covered too, the probe reads the index
-- only (it compares review orders to take each pair once), and the page's
-- records are read for its pairs alone (server/src/review/duplicates.rs).
DROP INDEX sightings_duplicate_probe_idx;
CREATE INDEX sightings_duplicate_probe_idx ON sightings (territory_id, taxon_key, event_date)
    INCLUDE (id, duplicate_of, geom, review_seq);
