using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Grains.Interfaces;

/// <summary>Secret tokens and the digests that key client grains.</summary>
public static class TokenDigest
{
    /// <summary>Bytes of randomness in a token (256 bits).</summary>
    public const int TokenBytes = 32;

    /// <summary>A fresh secret token: 256 random bits in base64url (43 characters).</summary>
    public static string NewToken() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(TokenBytes));

    /// <summary>SHA-256 of the token's UTF-8 bytes, in base64url: the key of the client's grain.</summary>
    public static string Of(string token)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(token), hash);
        return Base64Url.EncodeToString(hash);
    }
}
