"""Which AppSync resolver serves which field, on which data source: the one description that
the resolver files, the CloudFormation resources and the Node test harness are all made from.

Every field of Query, Mutation and Subscription has a resolver here (tests check it against
the schema in code); a pipeline resolver names its functions in the order they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from domain.aggregates import AGGREGATES


class DataSourceKind(StrEnum):
    """AppSync's data source types, as CloudFormation spells them."""

    DYNAMODB = "AMAZON_DYNAMODB"
    HTTP = "HTTP"
    EVENTBRIDGE = "AMAZON_EVENTBRIDGE"
    RDS = "RELATIONAL_DATABASE"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class DataSource:
    name: str
    kind: DataSourceKind
    purpose: str


# The projections table of this region (a replica of the global table).
PROJECTIONS: Final = DataSource(
    "Projections", DataSourceKind.DYNAMODB, "the region's replica of the projections table"
)
# Step Functions' API in the primary region, SigV4-signed for `states`.
PRIMARY_STEP_FUNCTIONS: Final = DataSource(
    "PrimaryStepFunctions",
    DataSourceKind.HTTP,
    "Step Functions in the primary region (StartExecution, DescribeExecution)",
)
# This region's event bus; its rule forwards profile updates to the primary's.
PROFILE_UPDATES_BUS: Final = DataSource(
    "ProfileUpdatesBus", DataSourceKind.EVENTBRIDGE, "the region's event bus"
)
# The RDS Data API on the primary's Aurora PostgreSQL cluster.
PRIMARY_AURORA: Final = DataSource(
    "PrimaryAurora",
    DataSourceKind.RDS,
    "the relational model on the primary's Aurora PostgreSQL (RDS Data API)",
)
# No backend: the mutation's answer is its input, and @aws_subscribe fires on it.
LOCAL: Final = DataSource("Local", DataSourceKind.NONE, "no backend (publish*, subscriptions)")

DATA_SOURCES: Final = (
    PROJECTIONS,
    PRIMARY_STEP_FUNCTIONS,
    PROFILE_UPDATES_BUS,
    PRIMARY_AURORA,
    LOCAL,
)


@dataclass(frozen=True, slots=True)
class Function:
    """A pipeline function: `js/functions/<name>.js` on `data_source`."""

    name: str
    data_source: DataSource

    @property
    def source(self) -> str:
        return f"functions/{self.name}.js"

    @property
    def output(self) -> str:
        """Where the export writes it, under DIR/resolvers/."""
        return f"functions/{self.name}.js"


@dataclass(frozen=True, slots=True)
class Resolver:
    """The resolver of `type_name.field_name`: `js/resolvers/<Type>.<field>.js`, a unit
    resolver on `data_source` or a pipeline of `functions`."""

    type_name: str
    field_name: str
    data_source: DataSource | None = None
    functions: tuple[Function, ...] = ()

    def __post_init__(self) -> None:
        if (self.data_source is None) == (not self.functions):
            raise ValueError(
                f"{self.type_name}.{self.field_name}: a resolver is either a unit resolver on "
                "a data source or a pipeline of functions"
            )

    @property
    def source(self) -> str:
        return f"resolvers/{self.type_name}.{self.field_name}.js"

    @property
    def output(self) -> str:
        """Where the export writes it, under DIR/resolvers/."""
        return f"{self.type_name}.{self.field_name}.js"

    @property
    def is_pipeline(self) -> bool:
        return bool(self.functions)


LOAD_CHECKOUT: Final = Function("loadCheckout", PROJECTIONS)
LOAD_CANCELLATION: Final = Function("loadCancellation", PROJECTIONS)
START_EXECUTION: Final = Function("startExecution", PRIMARY_STEP_FUNCTIONS)
COMPARE_EXISTING_EXECUTION: Final = Function("compareExistingExecution", PRIMARY_STEP_FUNCTIONS)
LOAD_PROFILE_CUSTOMER: Final = Function("loadProfileCustomer", PROJECTIONS)
PUT_PROFILE_UPDATE: Final = Function("putProfileUpdate", PROFILE_UPDATES_BUS)

FUNCTIONS: Final = (
    LOAD_CHECKOUT,
    LOAD_CANCELLATION,
    START_EXECUTION,
    COMPARE_EXISTING_EXECUTION,
    LOAD_PROFILE_CUSTOMER,
    PUT_PROFILE_UPDATE,
)

RESOLVERS: Final[tuple[Resolver, ...]] = (
    Resolver("Query", "product", PROJECTIONS),
    Resolver("Query", "products", PROJECTIONS),
    Resolver("Query", "customer", PROJECTIONS),
    Resolver("Query", "order", PROJECTIONS),
    Resolver("Query", "ordersByCustomer", PROJECTIONS),
    Resolver("Query", "region", PROJECTIONS),
    Resolver(
        "Mutation",
        "checkout",
        functions=(LOAD_CHECKOUT, START_EXECUTION, COMPARE_EXISTING_EXECUTION),
    ),
    Resolver(
        "Mutation",
        "cancelOrder",
        functions=(LOAD_CANCELLATION, START_EXECUTION, COMPARE_EXISTING_EXECUTION),
    ),
    Resolver(
        "Mutation",
        "updateCustomerProfile",
        functions=(LOAD_PROFILE_CUSTOMER, PUT_PROFILE_UPDATE),
    ),
    Resolver("Mutation", "upsertProduct", PRIMARY_AURORA),
    # Each aggregate's publish mutation and the subscription it triggers (domain.aggregates).
    *(Resolver("Mutation", a.publish_mutation, LOCAL) for a in AGGREGATES),
    *(Resolver("Subscription", a.subscription, LOCAL) for a in AGGREGATES),
)
