using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace WebSocketFrontend.Edge;

/// <summary>
/// What each client address may still do: open connections, new connections, registrations and
/// failed token checks. Buckets are computed on demand from the injected clock (no timer per
/// address), and the table is bounded: past <see cref="LimitsOptions.MaxTrackedAddresses"/> it
/// forgets idle addresses first (full buckets and no open connection, the same as a new address),
/// then the least recently seen ones without an open connection, down to half the bound, so an
/// attacker cycling addresses cannot grow it without limit. With <see cref="LimitsOptions.Enabled"/> false every check passes.
/// </summary>
public sealed class AddressBudgets(IOptions<LimitsOptions> options, TimeProvider time)
{
    /// <summary>IPv6 clients are budgeted per /64: one subscriber line usually holds a whole /64.</summary>
    private const int Ipv6PrefixBytes = 8;

    private readonly LimitsOptions _options = options.Value;
    private readonly ConcurrentDictionary<IPAddress, AddressState> _addresses = new();
    private readonly Lock _sweep = new();

    // Kept apart from the dictionary: its Count takes every one of its locks, up to a thousand on a large table.
    private int _tracked;

    /// <summary>Addresses remembered at this moment.</summary>
    public int TrackedAddresses => Volatile.Read(ref _tracked);

    /// <summary>Whether per-address budgets apply at all.</summary>
    public bool Enabled => _options.Enabled;

    /// <summary>
    /// Takes a connection slot of <paramref name="address"/>: null with the refusal when the address
    /// holds too many connections or opens them too fast. The lease gives the slot back.
    /// </summary>
    public ConnectionLease? TryOpenConnection(IPAddress? address, out AdmissionRefusal refusal)
    {
        refusal = default;
        if (!_options.Enabled)
        {
            return ConnectionLease.Untracked;
        }

        (var lease, refusal) = WithState<(ConnectionLease?, AdmissionRefusal)>(address, (state, now) =>
        {
            if (_options.MaxConnectionsPerIp > 0 && state.Open >= _options.MaxConnectionsPerIp)
            {
                return (null, new AdmissionRefusal(AdmissionReason.ConnectionsPerIp, TimeSpan.FromSeconds(5)));
            }

            if (!state.Connections.TryTake(_options.ConnectionsPerSecondPerIp, _options.ConnectionBurstPerIp, now, time, out var wait))
            {
                return (null, new AdmissionRefusal(AdmissionReason.ConnectionRate, wait));
            }

            state.Open++;
            return (new ConnectionLease(state), default(AdmissionRefusal));
        });
        return lease;
    }

    /// <summary>Takes one registration from the budget of <paramref name="address"/>; false with the wait when it is spent.</summary>
    public bool TryRegister(IPAddress? address, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (!_options.Enabled)
        {
            return true;
        }

        retryAfter = WithState(address, (state, now) => state.Registrations.TryTake(
            _options.RegistrationsPerSecondPerIp, _options.RegistrationBurstPerIp, now, time, out var wait) ? TimeSpan.Zero : wait);
        return retryAfter == TimeSpan.Zero;
    }

    /// <summary>Whether <paramref name="address"/> may still have a token checked: false once its failures used up their budget.</summary>
    public bool MayCheckToken(IPAddress? address)
    {
        if (!_options.Enabled)
        {
            return true;
        }

        return WithState(address, (state, now) => state.Failures.Available(
            _options.FailedTokenChecksPerSecondPerIp, _options.FailedTokenCheckBurstPerIp, now, time) >= 1);
    }

    /// <summary>Charges a failed token check (or a wrong registration key) to <paramref name="address"/>.</summary>
    public void RecordTokenFailure(IPAddress? address)
    {
        if (!_options.Enabled)
        {
            return;
        }

        WithState(address, (state, now) => state.Failures.TryTake(_options.FailedTokenChecksPerSecondPerIp, _options.FailedTokenCheckBurstPerIp, now, time, out _));
    }

    /// <summary>The key an address is budgeted under: IPv4 as is (also when mapped to IPv6), IPv6 by its /64.</summary>
    public static IPAddress KeyOf(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[Ipv6PrefixBytes..].Clear();
        return new IPAddress(bytes);
    }

    /// <summary>Runs <paramref name="action"/> on the state of <paramref name="address"/>, under its lock, and marks the address as seen.</summary>
    private T WithState<T>(IPAddress? address, Func<AddressState, long, T> action)
    {
        while (true)
        {
            var state = Get(address);
            lock (state)
            {
                // Forgotten by a sweep since it was looked up: a fresh entry takes its place.
                if (state.Removed)
                {
                    continue;
                }

                var now = time.GetTimestamp();
                state.LastSeen = now;
                return action(state, now);
            }
        }
    }

    private AddressState Get(IPAddress? address)
    {
        var key = KeyOf(address);
        while (true)
        {
            if (_addresses.TryGetValue(key, out var state))
            {
                return state;
            }

            if (TrackedAddresses >= _options.MaxTrackedAddresses)
            {
                Sweep();
            }

            var fresh = new AddressState();
            if (_addresses.TryAdd(key, fresh))
            {
                Interlocked.Increment(ref _tracked);
                return fresh;
            }
        }
    }

    /// <summary>
    /// Forgets addresses until the table is at half its bound, never one with an open connection:
    /// idle ones as they are found, then the least recently seen. Sweeping to half keeps the cost
    /// per new address constant while an attacker cycles addresses.
    /// </summary>
    private void Sweep()
    {
        lock (_sweep)
        {
            if (TrackedAddresses < _options.MaxTrackedAddresses)
            {
                return;
            }

            var target = _options.MaxTrackedAddresses / 2;
            var now = time.GetTimestamp();
            var busy = new List<(long LastSeen, IPAddress Key, AddressState State)>();
            foreach (var (key, state) in _addresses)
            {
                lock (state)
                {
                    if (state.Open != 0)
                    {
                        continue;
                    }

                    // An idle entry carries nothing a new one would not.
                    if (IsIdle(state, now))
                    {
                        Forget(key, state);
                    }
                    else
                    {
                        busy.Add((state.LastSeen, key, state));
                    }
                }
            }

            if (TrackedAddresses <= target)
            {
                return;
            }

            busy.Sort(static (a, b) => a.LastSeen.CompareTo(b.LastSeen));
            foreach (var (_, key, state) in busy)
            {
                if (TrackedAddresses <= target)
                {
                    break;
                }

                lock (state)
                {
                    if (state.Open == 0)
                    {
                        Forget(key, state);
                    }
                }
            }
        }
    }

    /// <summary>Drops an entry; the caller holds its lock, and a caller that still holds a reference sees <see cref="AddressState.Removed"/>.</summary>
    private void Forget(IPAddress key, AddressState state)
    {
        state.Removed = true;
        if (_addresses.TryRemove(new KeyValuePair<IPAddress, AddressState>(key, state)))
        {
            Interlocked.Decrement(ref _tracked);
        }
    }

    private bool IsIdle(AddressState state, long now) =>
        state.Connections.Available(_options.ConnectionsPerSecondPerIp, _options.ConnectionBurstPerIp, now, time) >= _options.ConnectionBurstPerIp
        && state.Registrations.Available(_options.RegistrationsPerSecondPerIp, _options.RegistrationBurstPerIp, now, time) >= _options.RegistrationBurstPerIp
        && state.Failures.Available(_options.FailedTokenChecksPerSecondPerIp, _options.FailedTokenCheckBurstPerIp, now, time) >= _options.FailedTokenCheckBurstPerIp;

    /// <summary>The budgets of one address; guarded by its own lock.</summary>
    internal sealed class AddressState
    {
        public Bucket Connections = Bucket.Full;
        public Bucket Registrations = Bucket.Full;
        public Bucket Failures = Bucket.Full;
        public int Open;
        public long LastSeen;
        public bool Removed;
    }

    /// <summary>
    /// A token bucket refilled from the elapsed time when it is asked, like the per-socket
    /// request budget. A fresh bucket is full; the first call fixes its clock.
    /// </summary>
    internal struct Bucket
    {
        private double _spent;
        private long _last;

        public static Bucket Full => default;

        /// <summary>Tokens available now.</summary>
        public readonly double Available(double perSecond, int burst, long now, TimeProvider time) =>
            burst - Math.Max(0, _spent - (_last == 0 ? double.PositiveInfinity : time.GetElapsedTime(_last, now).TotalSeconds * perSecond));

        /// <summary>Takes a token; false with the time until one is back when there is none.</summary>
        public bool TryTake(double perSecond, int burst, long now, TimeProvider time, out TimeSpan wait)
        {
            var available = Available(perSecond, burst, now, time);
            _spent = burst - available;
            _last = now;
            if (available < 1)
            {
                wait = TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling((1 - available) / perSecond)));
                return false;
            }

            _spent++;
            wait = TimeSpan.Zero;
            return true;
        }
    }
}

/// <summary>Why a connection was refused before its upgrade.</summary>
public enum AdmissionReason
{
    /// <summary>The frontend holds its total of connections (503).</summary>
    Connections,

    /// <summary>The address holds its share of connections (429).</summary>
    ConnectionsPerIp,

    /// <summary>The address opens connections faster than its budget (429).</summary>
    ConnectionRate,

    /// <summary>The page's origin is not allowed (403).</summary>
    Origin,
}

/// <summary>A refusal and when the caller may try again.</summary>
public readonly record struct AdmissionRefusal(AdmissionReason Reason, TimeSpan RetryAfter);

/// <summary>An admitted connection's slot on its address; disposing gives it back once.</summary>
public sealed class ConnectionLease : IDisposable
{
    private AddressBudgets.AddressState? _state;

    internal ConnectionLease(AddressBudgets.AddressState? state) => _state = state;

    /// <summary>A lease that holds no per-address slot (budgets off).</summary>
    internal static ConnectionLease Untracked => new(null);

    public void Dispose()
    {
        var state = Interlocked.Exchange(ref _state, null);
        if (state is null)
        {
            return;
        }

        lock (state)
        {
            state.Open--;
        }
    }
}
