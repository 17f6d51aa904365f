using Grains.Interfaces;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// A reply frame, and what to do once it is on the socket (remove the responses it carried, say); then the
/// frames that go right behind it, before anything else (the pages of a login's queue that did not fit).
/// </summary>
public readonly record struct Reply(byte[] Frame, Func<Task>? AfterWritten = null, IReadOnlyList<Reply>? FollowedBy = null)
{
    public static implicit operator Reply(byte[] frame) => new(frame);
}

/// <summary>A socket's login: the client, the digest of the token it logged in with, and the registration its mailbox holds.</summary>
public sealed record SessionLogin(int ClientId, string Digest, SessionRegistration Registration);

/// <summary>
/// The token a socket last sent with, its digest and its client grain, kept by the socket so that sending with the
/// same token again costs no hashing. It lives in the socket's memory as long as the socket, as the token does in
/// the client that holds it; it vouches for nothing: every send still asks the grain.
/// </summary>
public sealed record SenderToken(string Token, string Digest, IClientGrain Grain);
