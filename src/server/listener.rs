//! Listening sockets, made with socket2 so every option is ours: SO_REUSEPORT, backlog, no delay.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// Binds one non-blocking `SO_REUSEPORT` listener on `addr` with `backlog`.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// One listener per worker for every address. An address with port 0 is resolved by the first
/// bind, and the other workers bind the same port, so all workers share each address.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
    backlog: i32,
) -> Result<Vec<Vec<TcpListener>>, String> {
    let mut per_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for &addr in addrs {
        let first =
            bind_reuseport(addr, backlog).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let resolved = first
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        per_worker[0].push(first);
        for list in per_worker.iter_mut().skip(1) {
            list.push(
                bind_reuseport(resolved, backlog)
                    .map_err(|e| format!("cannot listen on {resolved}: {e}"))?,
            );
        }
    }
    Ok(per_worker)
}

/// Whether an accept error means "out of descriptors or memory": back off instead of spinning.
pub fn is_resource_exhaustion(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Host-wide claims on listen addresses: one abstract unix socket `glint-listen-<addr>` per
/// address, held for the life of the process.
///
/// `SO_REUSEPORT` lets a second `glint serve` bind an address another one serves and silently
/// take part of its traffic into its own data dir; the data dir lock cannot see that. An
/// abstract socket name can be bound by one process at a time and disappears when it exits
/// (even on SIGKILL), so it says "this address is served" without a file to clean up.
pub struct AddressClaims(Vec<std::os::unix::net::UnixListener>);

impl AddressClaims {
    pub fn new() -> AddressClaims {
        AddressClaims(Vec::new())
    }

    /// Claims `addr` (a resolved address, port not 0). A specific address also refuses when
    /// another glint holds the wildcard address of the same port, which serves it too.
    pub fn claim(&mut self, addr: SocketAddr) -> Result<(), String> {
        if !addr.ip().is_unspecified() {
            for wildcard in [
                SocketAddr::from(([0, 0, 0, 0], addr.port())),
                SocketAddr::from(([0u16; 8], addr.port())),
            ] {
                // A probe: bound and released at once.
                claim_name(addr, wildcard)?;
            }
        }
        self.0.push(claim_name(addr, addr)?);
        Ok(())
    }
}

impl Default for AddressClaims {
    fn default() -> Self {
        Self::new()
    }
}

fn claim_name(
    asked: SocketAddr,
    addr: SocketAddr,
) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("glint-listen-{addr}");
    let unix = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| format!("cannot claim {asked}: {e}"))?;
    std::os::unix::net::UnixListener::bind_addr(&unix).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "{asked} is already served by another glint serve{} (stop it, or pick another --listen address)",
                if addr == asked {
                    String::new()
                } else {
                    format!(" on {addr}")
                }
            )
        } else {
            format!("cannot claim {asked}: {e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_claimed_once_and_a_wildcard_covers_its_port() {
        // A port no other test claims: derived from this process, so parallel runs differ.
        let port = 20_000 + (std::process::id() % 40_000) as u16;
        let specific: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let wildcard: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
        let mut first = AddressClaims::new();
        first.claim(specific).unwrap();
        let e = AddressClaims::new().claim(specific).unwrap_err();
        assert!(
            e.contains(&format!(
                "{specific} is already served by another glint serve"
            )),
            "{e}"
        );
        drop(first);
        let mut wide = AddressClaims::new();
        wide.claim(wildcard).unwrap();
        let e = AddressClaims::new().claim(specific).unwrap_err();
        assert!(
            e.contains(&format!(
                "already served by another glint serve on {wildcard}"
            )),
            "{e}"
        );
        drop(wide);
        AddressClaims::new().claim(specific).unwrap();
    }
}
