-- Bookkeeping fields are not conflicts (issue 24).
--
-- Two phones editing a record both set `modifiedAt`; the inventory used to
-- list that as a conflict no coordinator could settle. The materialisation
-- now leaves the fields phones fill in by themselves out of `conflicts`
-- (`schemas::BOOKKEEPING_FIELDS`); rows stored before are cleaned the same
-- way here, so `has_conflicts` and the review counts agree at once.

CREATE FUNCTION pg_temp.without_bookkeeping(conflicts jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(jsonb_agg(c ORDER BY n), '[]'::jsonb)
    FROM jsonb_array_elements(conflicts) WITH ORDINALITY AS e(c, n)
    WHERE NOT (c->>'field' = ANY (ARRAY['id', 'authorId', 'volunteerId', 'deviceId',
                                       'createdAt', 'modifiedAt', 'occurrenceID']))
$$;

UPDATE sightings SET conflicts = pg_temp.without_bookkeeping(conflicts)
    WHERE has_conflicts AND conflicts <> pg_temp.without_bookkeeping(conflicts);
UPDATE degradation_reports SET conflicts = pg_temp.without_bookkeeping(conflicts)
    WHERE has_conflicts AND conflicts <> pg_temp.without_bookkeeping(conflicts);
UPDATE timesheet_entries SET conflicts = pg_temp.without_bookkeeping(conflicts)
    WHERE has_conflicts AND conflicts <> pg_temp.without_bookkeeping(conflicts);
UPDATE invalid_records SET conflicts = pg_temp.without_bookkeeping(conflicts)
    WHERE jsonb_array_length(conflicts) > 0 AND conflicts <> pg_temp.without_bookkeeping(conflicts);
