-- A review filter by place and period (issue 9: a 500 m box and one month
-- over 3 million sightings) reads one index that narrows all three at once:
-- GiST over the territory, the date and the point (btree_gist gives GiST
-- the uuid and timestamp columns). With the point alone indexed, the planner
-- walked the review order and tested every row against the box, as it
-- cannot tell how few rows a small box holds; with this index its estimate
-- of a box and a month is small and it reads them first. It replaces the
-- point-only index, whose every use (a box within a territory) it covers.
CREATE EXTENSION IF NOT EXISTS btree_gist;
DROP INDEX sightings_geom_idx;
CREATE INDEX sightings_review_place_idx ON sightings USING gist (territory_id, event_date, geom);
