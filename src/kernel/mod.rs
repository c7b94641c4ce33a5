//! The kernel adapters: the imperative shell that observes the stack's objects on the live
//! kernel and makes a plan's operations, through rtnetlink, namespaces and a few files.
//! They make no decisions: what to create, change or delete comes from the planner.

mod adopted;
pub mod conntrack;
mod dump;
mod enter;
mod error;
mod execute;
mod files;
mod host_probe;
mod hosts_file;
mod label;
mod limits;
mod lock;
mod netns;
mod nft;
mod observe;
mod ports;
mod privilege;
mod probe;
mod processes;
mod record;
mod resolver;
mod sockets;
mod swap;
mod sysctl;
mod writing;

pub use enter::enter;
pub use error::KernelError;
pub use files::{left_for_host, remove_files};
pub use lock::{ApplyLock, LockError, LockHolder};
pub use observe::Observation;
pub use privilege::has_privileges;
pub use probe::Pacing;
pub use record::{read_record, write_record};
pub use resolver::serve as serve_names;
pub use swap::Drained;
pub use writing::{Access, write_file};

pub use crate::state::HostNamespace;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use rtnetlink::Handle;

use crate::firewall::{Found, dropping_forward_chains, recognise, table_name};
use crate::names::parse_resolv_conf;
use crate::plan::{
    AdoptedFacts, FileLimit, Operation, Plan, Program, Step, Stranded, names_after_failure, open_files_needed,
};
use crate::state::{FORWARDING, HostSetting, KernelState, NamespaceName, Resource, Scope, Sysctl, observe_forwarding};
use error::io_error;
use nft::Nft;
use observe::NamespaceView;

/// How many requests are in flight at once, when observing namespaces or making operations
/// that do not depend on each other.
const IN_FLIGHT: usize = 64;

/// What the operations of an apply are made with, besides the plan: what becomes of the
/// processes in the namespaces it deletes, and which namespaces the adopted paths led to
/// when the plan was checked.
struct Made<'a> {
    stranded: &'a Stranded,
    adopted: &'a AdoptedFacts,
}

/// Where stackctl keeps what lives outside the kernel.
#[derive(Debug, Clone)]
pub struct Places {
    /// Named network namespaces, as `ip netns` keeps them.
    pub netns: PathBuf,
    /// Per-namespace files (`hosts`, `resolv.conf`), as `ip netns exec` reads them.
    pub etc_netns: PathBuf,
    /// Locks, apply records and the name server's files.
    pub state: PathBuf,
}

impl Places {
    pub fn system() -> Places {
        Places {
            netns: PathBuf::from("/run/netns"),
            etc_netns: PathBuf::from("/etc/netns"),
            state: PathBuf::from("/run/stackctl"),
        }
    }

    /// The path of a namespace: under `/run/netns` for those stackctl creates.
    pub fn namespace(&self, name: &NamespaceName) -> PathBuf {
        match name {
            NamespaceName::Created(name) => self.netns.join(name),
            NamespaceName::Adopted(path) => PathBuf::from(path),
        }
    }

    /// stackctl's run directory for `host` (`/run/stackctl/HOST`), made (or made again)
    /// root's alone, and stackctl's with it: the host's locks, records and name server's
    /// files live in it.
    pub fn run_directory(&self, host: &HostNamespace) -> std::io::Result<PathBuf> {
        writing::directory(&self.state, Access::RootOnly, writing::Holder::Stackctl)?;
        let path = self.state.join(host.tag());
        writing::directory(&path, Access::RootOnly, writing::Holder::Stackctl)?;
        Ok(path)
    }

    /// The apply lock of a stack on a host.
    pub fn lock(&self, host: &HostNamespace, stack: &str) -> PathBuf {
        self.state.join(host.tag()).join(format!("{stack}.lock"))
    }

    /// The lock that stacks' applies on a host take to pick and make subnets; `+` is in no
    /// stack's name.
    pub fn subnets_lock(&self, host: &HostNamespace) -> PathBuf {
        self.state.join(host.tag()).join("+subnets.lock")
    }

    /// The hosts file of a container.
    pub fn hosts_file(&self, scope: &Scope, container: &str) -> PathBuf {
        self.etc_netns.join(scope.files_name(container)).join("hosts")
    }

    /// The `resolv.conf` of a container: its name servers.
    pub fn resolv_conf(&self, scope: &Scope, container: &str) -> PathBuf {
        self.etc_netns.join(scope.files_name(container)).join("resolv.conf")
    }
}

/// A connection to one namespace: an rtnetlink handle inside it, whose socket keeps the
/// namespace alive. Its file is opened again for the moment it is needed (to place veth
/// peers): an apply holds a connection to every namespace of the stack at once.
struct Connected {
    handle: Handle,
}

/// The live kernel, as seen from the host namespace.
pub struct Kernel {
    runtime: tokio::runtime::Runtime,
    host: Handle,
    host_namespace: HostNamespace,
    /// The named host namespace, for the work that joins it (`nft`, `/proc`); `None` for
    /// the process's own.
    host_file: Option<File>,
    places: Places,
    /// Connections to the stack's namespaces, by container, opened when apply first needs
    /// them.
    namespaces: Mutex<HashMap<String, Arc<Connected>>>,
}

impl Kernel {
    /// Connects to the host namespace; `None` when it is a named one that does not exist
    /// (yet), also when only the empty file of an interrupted creation is at its path:
    /// reading it changes nothing, not even by creating it.
    pub fn open(host: &HostNamespace, places: Places) -> Result<Option<Kernel>, KernelError> {
        let runtime = runtime()?;
        let (handle, host_file) = match host {
            HostNamespace::Current => (
                netns::connect_here(runtime.handle())
                    .map_err(|error| KernelError::new("open", "a netlink socket", error))?,
                None,
            ),
            HostNamespace::Named(name) => {
                let path = places.netns.join(name);
                let file = match netns::open_host(&path) {
                    Ok(Some(file)) => file,
                    Ok(None) => return Ok(None),
                    Err(error) => return Err(KernelError::new("open", host_object(name, &path), error)),
                };
                let handle = netns::connect_all(
                    vec![file.try_clone().map_err(|error| KernelError::new("open", host_object(name, &path), error))?],
                    runtime.handle(),
                )
                .pop()
                .expect("one connection per namespace")
                .map_err(|error| KernelError::new("connect to", host_object(name, &path), error))?;
                (handle, Some(file))
            }
        };
        Ok(Some(Kernel::new(runtime, handle, host, host_file, places)))
    }

    /// Connects to the host namespace, creating a named one that does not exist yet, with
    /// its loopback up: a scratch host is a working host, whose programs reach its own
    /// published ports on 127.0.0.1.
    pub fn open_or_create(host: &HostNamespace, places: Places) -> Result<Kernel, KernelError> {
        if let Some(kernel) = Kernel::open(host, places.clone())? {
            return Ok(kernel);
        }
        let HostNamespace::Named(name) = host else { unreachable!("the current namespace always exists") };
        let runtime = runtime()?;
        let path = places.netns.join(name);
        let (file, handle) = runtime
            // A scratch host starts as a container's namespace does; the stack's settings of
            // the host (forwarding) are resources of their own.
            .block_on(netns::create(&path, runtime.handle(), crate::state::NamespaceConf::for_a_container()))
            .map_err(|error| KernelError::new("create", host_object(name, &path), error))?;
        Ok(Kernel::new(runtime, handle, host, Some(file), places))
    }

    /// What a named host that does not exist holds of the stack, read without creating it.
    /// The host holds nothing, but the stack's namespaces live beside it, under
    /// `/run/netns`, and outlive a host deleted by hand (`ip netns delete`), with the names
    /// its name server still serves them: they are read as a new, empty host would see
    /// them, which is what apply and destroy create before they change anything. Also what
    /// is at the paths the stack adopts, which are the machine's.
    pub fn observe_absent(scope: &Scope, places: &Places) -> Result<Observation, KernelError> {
        let runtime = runtime()?;
        let adopted = adopted::find(places, scope, None);
        let host = dump::Snapshot::default();
        let seen = Kernel::observe_namespaces(&runtime, places, &scope.host, scope, &host, adopted.usable)?;
        let mut observation = Observation {
            state: seen.state,
            processes: seen.processes,
            adopted: adopted.facts,
            file_limit: seen.file_limit,
            ..Observation::of_absent_host(scope)
        };
        // A new network namespace does not forward. The record says whether the stack
        // holds forwarding there, as the host that apply or destroy creates again shows
        // it; with nothing of the stack left beside the host, nothing creates it again, and
        // its settings went with it.
        let record = read_record(places, &scope.host, &scope.stack).unwrap_or_default();
        let (settings, held) = settings_as(places, &scope.host, scope, &record, "0".to_owned());
        observation.host.settings = settings;
        if !observation.state.is_empty() {
            for sysctl in held {
                observation.state.insert(Resource::Sysctl(sysctl));
            }
        }
        Ok(observation)
    }

    /// Deletes the named namespace that plays the host: a scratch host that did not exist,
    /// and that destroy created only to remove what a stack had left beside it.
    pub fn delete_host(self) -> Result<(), KernelError> {
        let HostNamespace::Named(name) = &self.host_namespace else { unreachable!("only a named host is deleted") };
        let path = self.places.netns.join(name);
        netns::delete(&path).map_err(|error| KernelError::new("delete", host_object(name, &path), error))
    }

    fn new(
        runtime: tokio::runtime::Runtime,
        host: Handle,
        host_namespace: &HostNamespace,
        host_file: Option<File>,
        places: Places,
    ) -> Kernel {
        Kernel {
            runtime,
            host,
            host_namespace: host_namespace.clone(),
            host_file,
            places,
            namespaces: Mutex::new(HashMap::new()),
        }
    }

    fn nft(&self) -> Nft<'_> {
        Nft { namespace: self.host_file.as_ref() }
    }

    pub fn places(&self) -> &Places {
        &self.places
    }

    /// Reads the stack's objects and what the rest of the host holds.
    ///
    /// The firewall's resources are those of the last apply's record whose rules the
    /// stack's tables hold whole: a rule tells which resource it was made for, but not all
    /// of what that resource is.
    pub fn observe(&self, scope: &Scope) -> Result<Observation, KernelError> {
        let adopted = adopted::find(&self.places, scope, self.host_file.as_ref());
        let mut observation = self.observe_interfaces(scope, adopted.usable)?;
        let tables = table_name(&scope.stack);
        let mut found = Found::default();
        for family in ["inet", "bridge"] {
            let object = format!("nftables table `{family} {tables}`");
            let listing = self.nft().list(family, &tables).map_err(|error| KernelError::new("read", &object, error))?;
            if let Some(listing) = listing {
                found
                    .add_listing(&listing)
                    .map_err(|error| KernelError::new("read", &object, std::io::Error::other(error)))?;
            }
        }
        let record = read_record(&self.places, &self.host_namespace, &scope.stack).unwrap_or_default();
        for resource in recognise(&found, record.resources.values()) {
            observation.state.insert(resource);
        }
        let (settings, held) = self.observe_settings(scope, &record)?;
        observation.host.settings = settings;
        for sysctl in held {
            observation.state.insert(Resource::Sysctl(sysctl));
        }
        observation.tables = found.objects().clone();
        let chains = self.nft().list_chains().map_err(|error| KernelError::new("list", "nftables chains", error))?;
        observation.dropping_forward_chains = dropping_forward_chains(&chains, &tables)
            .map_err(|error| KernelError::new("read", "nftables chains", std::io::Error::other(error)))?;
        let local_ports = netns::inside(self.host_file.as_ref(), ports::read)
            .map_err(|error| KernelError::new("read", "the host's ports", error))?;
        observation.host.local_ports = Some(local_ports);
        observation.adopted = adopted.facts;
        Ok(observation)
    }

    /// The host's settings a stack may hold (see [`crate::state::HostSetting`]): their
    /// values, the other stacks whose records hold them, and those this stack's record
    /// holds, as observed resources with the value the host has now.
    fn observe_settings(
        &self,
        scope: &Scope,
        record: &KernelState,
    ) -> Result<(Vec<HostSetting>, Vec<Sysctl>), KernelError> {
        let name = FORWARDING;
        let value = sysctl::read(self.host_file.as_ref(), name)
            .map_err(|error| KernelError::new("read", format!("{name} on the host"), error))?;
        Ok(settings_as(&self.places, &self.host_namespace, scope, record, value))
    }

    fn observe_interfaces(&self, scope: &Scope, adopted: BTreeMap<String, File>) -> Result<Observation, KernelError> {
        let host = self
            .runtime
            .block_on(async {
                let mut host = dump::snapshot(&self.host).await?;
                host.forwarding = dump::static_forwarding(&self.host).await?;
                Ok(host)
            })
            .map_err(|error: rtnetlink::Error| KernelError::new("read", "the host namespace", io_error(error)))?;
        Kernel::observe_namespaces(&self.runtime, &self.places, &self.host_namespace, scope, &host, adopted)
    }

    /// The stack's objects as `host` (a snapshot of the host namespace) and the stack's
    /// namespaces show them, with the names the host's name server serves them and the
    /// processes in those namespaces. Of the adopted namespaces, only those the stack may
    /// use (`adopted`, open) are read: another's namespace holds nothing of the stack's,
    /// and its default route would be taken for the container's.
    fn observe_namespaces(
        runtime: &tokio::runtime::Runtime,
        places: &Places,
        host_namespace: &HostNamespace,
        scope: &Scope,
        host: &dump::Snapshot,
        mut adopted: BTreeMap<String, File>,
    ) -> Result<Observation, KernelError> {
        let names = Kernel::namespace_names(places, scope)?;
        // An apply holds a connection to every namespace at once: the limit is raised as
        // far as it may be, and plan and apply refuse a stack that does not fit under it.
        let needed = open_files_needed(names.len());
        let (soft, hard) = limits::raise_open_files(limits::OpenFiles::AtLeast(needed))
            .map_err(|error| KernelError::new("raise", "the limit on open files", error))?;
        let file_limit = FileLimit { namespaces: names.len(), soft, hard };
        // A connection holds a 64 KiB receive buffer and a file, so namespaces are opened
        // and read a batch at a time, and closed after; apply opens those it needs again.
        let mut inodes: HashMap<u64, String> = HashMap::new();
        let mut views = Vec::with_capacity(names.len());
        for batch in names.chunks(IN_FLIGHT) {
            let mut found: Vec<((String, NamespaceName), File)> = Vec::with_capacity(batch.len());
            for (container, name) in batch {
                let file = match name {
                    NamespaceName::Adopted(_) => adopted.remove(container),
                    NamespaceName::Created(_) => netns::open(&places.namespace(name)).ok(),
                };
                let Some(file) = file else { continue };
                if let Ok(inode) = processes::inode(&file) {
                    inodes.insert(inode, container.clone());
                }
                found.push(((container.clone(), name.clone()), file));
            }
            let (names, files): (Vec<_>, Vec<_>) = found.into_iter().unzip();
            let handles = netns::connect_all(files, runtime.handle());
            let mut connected = Vec::with_capacity(handles.len());
            for ((container, name), handle) in names.into_iter().zip(handles) {
                let object = format!("namespace of `{container}`");
                connected.push((
                    container,
                    name,
                    handle.map_err(|error| KernelError::new("connect to", object, error))?,
                ));
            }
            let snapshots = runtime.block_on(futures_util::future::join_all(
                connected.iter().map(|(_, _, handle)| dump::snapshot(handle)),
            ));
            for ((container, name, _), snapshot) in connected.into_iter().zip(snapshots) {
                let snapshot = snapshot.map_err(|error| {
                    KernelError::new("read", format!("namespace of `{container}`"), io_error(error))
                })?;
                let hosts_file = std::fs::read_to_string(places.hosts_file(scope, &container))
                    .is_ok_and(|text| hosts_file::is_stackctls(&text));
                let nameservers = std::fs::read_to_string(places.resolv_conf(scope, &container))
                    .ok()
                    .and_then(|text| parse_resolv_conf(&text));
                views.push(NamespaceView { container, name, snapshot, hosts_file, nameservers });
            }
        }
        // The names are what the running name server serves: a dead or stale server
        // serves none, so the next apply publishes them again.
        let names = resolver::Supervisor::new(places, host_namespace);
        let served = names.loaded(&scope.stack).map(|zone| zone.served()).unwrap_or_default();
        let mut observation = observe::read(scope, host, &views, &served);
        observation.processes = processes::running_in(&inodes);
        observation.file_limit = file_limit;
        Ok(observation)
    }

    fn names(&self) -> resolver::Supervisor<'_> {
        resolver::Supervisor::new(&self.places, &self.host_namespace)
    }

    /// Makes the host's name server serve `zone`, the names of the stack (from its
    /// `Hosts`, links and gateways): writes the stack's zone, starts the server or replaces
    /// one that is dead, hung or of another version, and returns once the server answers
    /// from the new zone. A zone with no clients withdraws the stack's zone, and
    /// stops the server when no stack has one. A program's `PublishNames` steps call it.
    fn publish_zone(&self, scope: &Scope, zone: &crate::names::Zone) -> Result<(), KernelError> {
        let names = self.names();
        let object =
            format!("the names of stack `{}` on the name server in {}", scope.stack, names.files().directory.display());
        if zone.clients.is_empty() {
            names.withdraw(&scope.stack).map_err(|error| KernelError::new("withdraw", object, error))
        } else {
            names.publish(zone).map_err(|error| KernelError::new("publish", object, error))
        }
    }

    /// The namespaces to look at: those the stack declares, and those under `/run/netns`
    /// that carry the stack's prefix (containers since removed from the stack).
    fn namespace_names(places: &Places, scope: &Scope) -> Result<Vec<(String, NamespaceName)>, KernelError> {
        let mut names: Vec<(String, NamespaceName)> =
            scope.namespaces.iter().map(|(container, name)| (container.clone(), name.clone())).collect();
        let prefix = scope.namespace_prefix();
        let entries = match std::fs::read_dir(&places.netns) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(error) => return Err(KernelError::new("list", places.netns.display().to_string(), error)),
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(container) = file_name.strip_prefix(&prefix)
                && !scope.namespaces.contains_key(container)
            {
                names.push((container.to_owned(), NamespaceName::Created(file_name.clone())));
            }
        }
        Ok(names)
    }

    /// Runs the program of `plan`, planned against what `observation` holds (see
    /// [`Program`]): its stages, side by side within each, its rule transactions, its
    /// records, the publication of the stack's names and a swap's verification and drain.
    /// Stops at the first step that fails; `done` holds every operation that was made,
    /// also when one failed.
    ///
    /// Every rule transaction is checked against the kernel (`nft -c`) before anything
    /// else is changed, so a missing kernel or `nft` feature stops the apply with nothing
    /// done. When the kernel refuses to change the tables in place (a base chain made
    /// differently by an earlier stackctl), the program that replaces them whole first
    /// ([`Program::replacing_tables`]) runs instead, if the kernel takes that one.
    ///
    /// After a failure, the names of what was made are published: what was made is
    /// served. When publishing fails and nothing else did, the apply fails with it.
    pub fn apply(&self, scope: &Scope, observation: &Observation, plan: &Plan, wait: &SwapWait) -> Applied {
        let mut applied = Applied::default();
        let program = match self.checked_program(scope, observation, plan) {
            Ok(program) => program,
            Err(error) => {
                applied.failed = Some(error);
                return applied;
            }
        };
        let made = Made { stranded: &plan.stranded, adopted: &observation.adopted };
        for step in &program.steps {
            if let Err(error) = self.run_step(scope, plan, step, &made, wait, &mut applied) {
                applied.failed = Some(error);
                break;
            }
        }
        if applied.failed.is_some() && !applied.done.is_empty() {
            // What was made is served, also after a failure.
            // The failure that stopped the apply is the one to report, not this one's.
            let zone = names_after_failure(&scope.stack, &observation.state, &applied.done);
            let _ = self.publish_zone(scope, &zone);
        }
        applied
    }

    /// The program of `plan` whose rule transactions the kernel takes: changing the
    /// stack's tables in place, or else replacing them whole first.
    fn checked_program(&self, scope: &Scope, observation: &Observation, plan: &Plan) -> Result<Program, KernelError> {
        let program = Program::of(&scope.stack, plan, &observation.state, &observation.tables);
        let object = || format!("the rules of stack `{}` before any change", scope.stack);
        let Err(error) = program.checks().iter().try_for_each(|script| self.nft().check(script)) else {
            return Ok(program);
        };
        let replacing = Program::replacing_tables(&scope.stack, plan, &observation.state);
        match replacing.checks().iter().try_for_each(|script| self.nft().check(script)) {
            Ok(()) => Ok(replacing),
            // The in-place refusal is the one that says what the kernel lacks.
            Err(_) => Err(KernelError::new("check", object(), error)),
        }
    }

    /// Runs one step of a program.
    fn run_step(
        &self,
        scope: &Scope,
        plan: &Plan,
        step: &Step,
        made: &Made,
        wait: &SwapWait,
        applied: &mut Applied,
    ) -> Result<(), KernelError> {
        let tables = || format!("the tables of stack `{}`", scope.stack);
        match step {
            Step::ReplaceTables { script } => {
                self.nft().apply(script).map_err(|error| KernelError::new("replace", tables(), error))
            }
            Step::Rules { operations, script } => {
                self.nft().apply(script).map_err(|error| KernelError::new("change", tables(), error))?;
                applied.done.extend(plan.operations[operations.clone()].iter().cloned());
                Ok(())
            }
            Step::Stage { operations } => self.run_stage(scope, &plan.operations[operations.clone()], made, applied),
            Step::Record => {
                (wait.made)(&applied.done);
                Ok(())
            }
            Step::PublishNames { zone } => self.publish_zone(scope, zone),
            Step::Verify { ports } => self.verify(ports, wait),
            Step::Drain { swap } => {
                applied.drained = self.drain(swap)?;
                Ok(())
            }
        }
    }

    /// Makes the operations of one stage side by side; every one is tried, and the first
    /// failure is returned.
    fn run_stage(
        &self,
        scope: &Scope,
        stage: &[Operation],
        made: &Made,
        applied: &mut Applied,
    ) -> Result<(), KernelError> {
        let executor = execute::Executor { kernel: self, scope, stranded: made.stranded, adopted: made.adopted };
        let results = self.runtime.block_on(
            futures_util::stream::iter(stage.iter().map(|operation| executor.run(operation)))
                .buffered(IN_FLIGHT)
                .collect::<Vec<_>>(),
        );
        let mut failed = None;
        for (operation, result) in stage.iter().zip(results) {
            match result {
                Ok(()) => applied.done.push(operation.clone()),
                Err(error) if failed.is_none() => failed = Some(error),
                Err(_) => {}
            }
        }
        failed.map_or(Ok(()), Err)
    }

    fn connection(&self, container: &str) -> Option<Arc<Connected>> {
        self.namespaces.lock().expect("namespace map").get(container).cloned()
    }

    fn remember(&self, container: &str, connected: Connected) -> Arc<Connected> {
        let connected = Arc::new(connected);
        self.namespaces.lock().expect("namespace map").insert(container.to_owned(), Arc::clone(&connected));
        connected
    }

    fn forget(&self, container: &str) {
        self.namespaces.lock().expect("namespace map").remove(container);
    }
}

/// How long a swap waits for the containers that take its aliases to accept connections
/// once they are wired, whom it tells when it has to wait, and who keeps what each of its
/// phases made before it waits.
pub struct SwapWait<'a> {
    /// Up to how long; `None` for the short while a container that already listened
    /// needs once its link is up.
    pub within: Option<std::time::Duration>,
    /// Told once of each port that does not accept at the first try, with how long it is
    /// waited for.
    pub waiting: &'a (dyn Fn(&crate::plan::Readiness, std::time::Duration) + Sync),
    /// Given every operation made so far, when a phase ends and the swap is about to wait
    /// (for its new containers, or for a drain): an apply interrupted while it waits then
    /// leaves a record of what it made.
    pub made: &'a dyn Fn(&[Operation]),
}

/// What apply made, and why it stopped, if it did.
#[derive(Debug, Default)]
pub struct Applied {
    pub done: Vec<Operation>,
    pub failed: Option<KernelError>,
    /// How the containers that a swap's aliases left drained.
    pub drained: Vec<Drained>,
}

/// The runtime that drives the netlink connections.
fn runtime() -> Result<tokio::runtime::Runtime, KernelError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .map_err(|error| KernelError::new("start", "the netlink runtime", error))
}

/// The host's settings, with `value` as the host has forwarding (see
/// [`crate::state::observe_forwarding`]), from the stack's `record` and the other stacks'.
fn settings_as(
    places: &Places,
    host: &HostNamespace,
    scope: &Scope,
    record: &KernelState,
    value: String,
) -> (Vec<HostSetting>, Vec<Sysctl>) {
    let others: Vec<(String, KernelState)> = record::stacks(places, host)
        .into_iter()
        .filter(|stack| *stack != scope.stack)
        .filter_map(|stack| read_record(places, host, &stack).map(|other| (stack, other)))
        .collect();
    let (setting, held) = observe_forwarding(value, record, &others);
    (vec![setting], held.into_iter().collect())
}

/// How errors name a named host namespace.
fn host_object(name: &str, path: &std::path::Path) -> String {
    format!("host namespace `{name}` ({})", path.display())
}
