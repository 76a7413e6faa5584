"""The relational model on PostgreSQL (asyncpg): pool, migrations, snapshots, repositories,
the transactional outbox and the demo seed."""
