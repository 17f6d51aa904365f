namespace Grains.Interfaces;

/// <summary>A client's basic information as the client sent it, with the fields the store indexes.</summary>
/// <param name="Json">The information object as raw JSON text, kept byte for byte.</param>
/// <param name="Name">The <c>name</c> property when the object has one.</param>
/// <param name="Location">The <c>location</c> property when the object has one.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.ClientInformation")]
public sealed record ClientInformation(
    [property: Id(0)] string Json,
    [property: Id(1)] string? Name,
    [property: Id(2)] string? Location);

/// <summary>What the store holds about a registered client.</summary>
/// <param name="Id">The client's unique id.</param>
/// <param name="Information">The client's information.</param>
/// <param name="CreatedAt">When the client registered.</param>
/// <param name="UpdatedAt">When the information last changed.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.ClientSnapshot")]
public sealed record ClientSnapshot(
    [property: Id(0)] int Id,
    [property: Id(1)] ClientInformation Information,
    [property: Id(2)] DateTimeOffset CreatedAt,
    [property: Id(3)] DateTimeOffset UpdatedAt);
