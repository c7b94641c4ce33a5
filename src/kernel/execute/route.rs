//! A container's default route, through its network's gateway, on link.

use std::net::Ipv4Addr;

use rtnetlink::RouteMessageBuilder;

use super::{Executor, Outcome, index_of};
use crate::kernel::error::io_error;
use crate::state::Route;

impl Executor<'_> {
    /// Creates or replaces the route.
    pub(super) async fn set_route(&self, route: &Route) -> Outcome {
        let connected = self.namespace(&route.container).await?;
        let index = index_of(&connected.handle, &route.ifname).await?;
        // On link: on an isolated network the address brings no subnet route that would
        // make the gateway a neighbour.
        let message =
            RouteMessageBuilder::<Ipv4Addr>::new().gateway(route.gateway).output_interface(index).onlink().build();
        connected.handle.route().add(message).replace().execute().await.map_err(io_error)
    }

    /// Deletes the route, unless its namespace is gone (and the route with it).
    pub(super) async fn delete_route(&self, route: &Route) -> Outcome {
        let Some(connected) = self.kernel.connection(&route.container) else { return Ok(()) };
        let message = RouteMessageBuilder::<Ipv4Addr>::new().gateway(route.gateway).build();
        connected.handle.route().del(message).execute().await.map_err(io_error)
    }
}
