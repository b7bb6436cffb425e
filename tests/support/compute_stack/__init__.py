"""A local Globus Compute stack for tests: real RabbitMQ, Slurm and endpoint; stand-in clouds.

See README.md beside this file. Product code never imports this package.
"""

from compute_stack.daemons import StackStartError
from compute_stack.endpoint import EndpointProcess
from compute_stack.stack import ComputeStack

__all__ = ["ComputeStack", "EndpointProcess", "StackStartError"]
