"""The projection store on DynamoDB: the single-table layout (items), the client (client),
table management (table), the ProjectionReader (reader) and the ProjectionWriter (writer)."""
