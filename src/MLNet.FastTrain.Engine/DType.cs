namespace MLNet.FastTrain.Engine;

/// <summary>The element type of a <see cref="Tensor"/>.</summary>
/// <remarks>
/// Training runs in <see cref="Float32"/>. <see cref="Float64"/> exists so that gradient checks by
/// central differences can run every operation in double precision, as torch's <c>gradcheck</c> does.
/// </remarks>
public enum DType
{
    /// <summary>IEEE 754 single precision.</summary>
    Float32,

    /// <summary>IEEE 754 double precision.</summary>
    Float64,
}
