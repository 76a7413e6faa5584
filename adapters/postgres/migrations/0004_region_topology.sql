-- The topology as the relational model knows it: which region is primary, since which epoch.
-- One row. It replicates with the database (physical streaming replication), so a promoted
-- replica holds the epoch the old primary had, and the promotion raises it (regions.control).
--
-- Every saga step and catalog write checks it in its own transaction (FOR SHARE: a promotion
-- waits for the steps in flight, and no step of the old epoch commits after it), so a worker
-- running under an older epoch than the database's writes nothing.
CREATE TABLE region_topology (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    primary_region text NOT NULL,
    epoch          bigint NOT NULL CHECK (epoch >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
