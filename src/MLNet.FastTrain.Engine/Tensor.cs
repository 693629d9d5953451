using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

/// <summary>
/// A dense, contiguous, row-major array of <see cref="DType.Float32"/> or <see cref="DType.Float64"/> values
/// with a shape (NCHW for images) and optional gradient tracking.
/// </summary>
/// <remarks>
/// Views (<see cref="Reshape"/>, <see cref="Narrow"/>, <see cref="Detach"/>) share storage with their source and
/// are always contiguous, so every kernel sees a plain span. Operations that would need strides
/// (transposes, permutations) copy.
/// </remarks>
public partial class Tensor
{
    private Array? _storage;
    private int _offset;
    private int[] _shape;
    private bool _requiresGrad;

    /// <summary>A tensor over <paramref name="storage"/>; <paramref name="shape"/> is held, never copied or written.</summary>
    internal Tensor(Array storage, int offset, int[] shape)
    {
        _shape = shape;
        Init(storage, offset, shape);
    }

    /// <summary>
    /// A tensor over <paramref name="storage"/>: inside a scope begun with <c>reuseTensorObjects</c>, an object an
    /// earlier such scope released, otherwise a new one.
    /// </summary>
    internal static Tensor Create(Array storage, int offset, int[] shape)
    {
        var reused = TensorScope.TakeReusable();
        if (reused is null) return new Tensor(storage, offset, shape);
        reused.Init(storage, offset, shape);
        return reused;
    }

    private void Init(Array storage, int offset, int[] shape)
    {
        int length = Numel(shape);
        if (offset < 0 || offset + length > storage.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"A view of shape {ShapeText.Format(shape)} at offset {offset} does not fit in storage of {storage.Length} elements.");
        _storage = storage;
        _offset = offset;
        _shape = shape;
        _requiresGrad = false;
        Length = length;
        DType = storage is double[] ? DType.Float64 : DType.Float32;
        Grad = null;
        GradFn = null;
        TensorScope.Track(this, storage);
    }

    /// <summary>Creates a tensor that takes over another tensor's storage, shape and dtype (used by <see cref="Modules.Parameter"/>).</summary>
    protected Tensor(Tensor source)
        : this(source.StorageOrThrow, source._offset, source._shape)
    {
    }

    /// <summary>The element type.</summary>
    public DType DType { get; private set; }

    /// <summary>The sizes of the dimensions.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements.</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Whether gradients flow to this tensor. Set it on leaves (inputs and parameters); a result of an
    /// operation requires grad exactly when one of its inputs does.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn is not null;
        set
        {
            if (GradFn is not null && !value)
                throw new InvalidOperationException("RequiresGrad can only be cleared on a leaf tensor; use Detach() to cut a result out of the graph.");
            _requiresGrad = value;
        }
    }

    /// <summary>The accumulated gradient of a leaf after <see cref="Backward"/>, or null.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>True for tensors not produced by a recorded operation.</summary>
    public bool IsLeaf => GradFn is null;

    internal GradNode? GradFn { get; set; }

    /// <summary>The size of one dimension; negative indices count from the end.</summary>
    public int Size(int dim) => _shape[NormalizeDim(dim, Rank)];

    /// <summary>A copy of the shape.</summary>
    public int[] ShapeArray() => (int[])_shape.Clone();

    internal int[] ShapeRef => _shape;

    internal Array Storage => StorageOrThrow;

    /// <summary>True after the <see cref="TensorScope"/> that lent this tensor its storage has ended.</summary>
    public bool IsReleased => _storage is null;

    private Array StorageOrThrow => _storage ?? throw new ObjectDisposedException(nameof(Tensor),
        $"This tensor of shape {ShapeText.Format(_shape)} was created inside a TensorScope that has ended; its memory went back to the pool. Copy what you need (Clone() outside the scope, ToArray(), Item()) before the scope ends.");

    /// <summary>
    /// Called by the scope that lent the storage, when it ends. The tensor's autograd node goes back to its pool: a
    /// released tensor can no longer take part in a backward pass.
    /// </summary>
    internal void Release()
    {
        _storage = null;
        var node = GradFn;
        GradFn = null;
        node?.Recycle();
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> if the scope that lent this tensor its memory has ended.</summary>
    internal void ThrowIfReleased() => _ = StorageOrThrow;

    internal int Offset => _offset;

    /// <summary>The elements of a float32 tensor, in row-major order.</summary>
    public Span<float> AsSpan() => DType == DType.Float32
        ? new Span<float>((float[])StorageOrThrow, _offset, Length)
        : throw new InvalidOperationException($"AsSpan() reads float32 tensors; this one is {DType}. Use AsDoubleSpan() or To(DType.Float32).");

    /// <summary>The elements of a float64 tensor, in row-major order.</summary>
    public Span<double> AsDoubleSpan() => DType == DType.Float64
        ? new Span<double>((double[])StorageOrThrow, _offset, Length)
        : throw new InvalidOperationException($"AsDoubleSpan() reads float64 tensors; this one is {DType}. Use AsSpan() or To(DType.Float64).");

    /// <summary>The elements as a span of <typeparamref name="T"/>, which must match <see cref="DType"/>.</summary>
    internal Span<T> Span<T>() => new((T[])StorageOrThrow, _offset, Length);

    /// <summary>A copy of the elements as float32.</summary>
    public float[] ToArray()
    {
        if (DType == DType.Float32) return AsSpan().ToArray();
        var src = AsDoubleSpan();
        var result = new float[Length];
        for (int i = 0; i < result.Length; i++) result[i] = (float)src[i];
        return result;
    }

    /// <summary>A copy of the elements as float64.</summary>
    public double[] ToDoubleArray()
    {
        if (DType == DType.Float64) return AsDoubleSpan().ToArray();
        var src = AsSpan();
        var result = new double[Length];
        for (int i = 0; i < result.Length; i++) result[i] = src[i];
        return result;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public double Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Item() needs a tensor with one element; this one has shape {ShapeText.Format(_shape)}.");
        return DType == DType.Float32 ? AsSpan()[0] : AsDoubleSpan()[0];
    }

    /// <summary>Reads or writes one element by its full index.</summary>
    [IndexerName("Element")]
    public double this[params int[] index]
    {
        get => DType == DType.Float32 ? AsSpan()[FlatIndex(index)] : AsDoubleSpan()[FlatIndex(index)];
        set
        {
            int i = FlatIndex(index);
            if (DType == DType.Float32) AsSpan()[i] = (float)value;
            else AsDoubleSpan()[i] = value;
        }
    }

    private int FlatIndex(int[] index)
    {
        if (index.Length != Rank) throw new ArgumentException($"An index into shape {ShapeText.Format(_shape)} has {Rank} components, not {index.Length}.", nameof(index));
        int flat = 0;
        for (int d = 0; d < Rank; d++)
        {
            if ((uint)index[d] >= (uint)_shape[d])
                throw new ArgumentOutOfRangeException(nameof(index), $"Index {index[d]} is out of range for dimension {d} of size {_shape[d]} (shape {ShapeText.Format(_shape)}).");
            flat = flat * _shape[d] + index[d];
        }
        return flat;
    }

    // ---- creation ------------------------------------------------------------------------------

    /// <summary>A float32 tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Zeros(shape, DType.Float32);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(int[] shape, DType dtype)
    {
        var s = CheckShape(shape);
        return Create(TensorScope.Allocate(Numel(s), dtype, clear: true), 0, s);
    }

    /// <summary>A zero tensor of a shape the engine computed on the stack (its array comes from <see cref="ShapeCache"/>).</summary>
    internal static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype)
    {
        var s = CheckShape(shape);
        return Create(TensorScope.Allocate(Numel(s), dtype, clear: true), 0, s);
    }

    /// <summary>A tensor whose elements are unspecified, for operations that write every element.</summary>
    internal static Tensor Empty(ReadOnlySpan<int> shape, DType dtype)
    {
        var s = CheckShape(shape);
        return Create(TensorScope.Allocate(Numel(s), dtype, clear: false), 0, s);
    }

    private static Tensor EmptyOfShape(int[] sharedShape, DType dtype) =>
        Create(TensorScope.Allocate(Numel(sharedShape), dtype, clear: false), 0, sharedShape);

    /// <summary>An uninitialised tensor with the shape and dtype of <paramref name="like"/>.</summary>
    internal static Tensor EmptyLike(Tensor like) => EmptyOfShape(like._shape, like.DType);

    /// <summary>A float32 tensor of ones.</summary>
    public static Tensor Ones(params int[] shape) => Full(shape, 1.0, DType.Float32);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(int[] shape, DType dtype) => Full(shape, 1.0, dtype);

    /// <summary>A tensor filled with one value.</summary>
    public static Tensor Full(int[] shape, double value, DType dtype = DType.Float32)
    {
        var t = Zeros(shape, dtype);
        t.Fill(value);
        return t;
    }

    /// <summary>A zero tensor with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Create(TensorScope.Allocate(like.Length, like.DType, clear: true), 0, like._shape);

    /// <summary>A one-element float32 tensor of rank 0.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full([], value, dtype);

    /// <summary>A one-dimensional float32 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromArray(data, data.Length);
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape (an empty shape makes a rank-0 tensor).</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        var s = CheckShape(shape);
        if (Numel(s) != data.Length) throw new ShapeMismatchException($"FromArray: {data.Length} values cannot have shape {ShapeText.Format(s)} ({Numel(s)} elements).");
        return new Tensor((float[])data.Clone(), 0, s);
    }

    /// <summary>A one-dimensional float64 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(double[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromArray(data, data.Length);
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape (an empty shape makes a rank-0 tensor).</summary>
    public static Tensor FromArray(double[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        var s = CheckShape(shape);
        if (Numel(s) != data.Length) throw new ShapeMismatchException($"FromArray: {data.Length} values cannot have shape {ShapeText.Format(s)} ({Numel(s)} elements).");
        return new Tensor((double[])data.Clone(), 0, s);
    }

    /// <summary>Values drawn from N(mean, std²).</summary>
    public static Tensor Normal(int[] shape, double mean = 0, double std = 1, Generator? generator = null, DType dtype = DType.Float32)
    {
        var t = Zeros(shape, dtype);
        t.FillNormal(mean, std, generator);
        return t;
    }

    /// <summary>Values drawn uniformly from [low, high).</summary>
    public static Tensor Uniform(int[] shape, double low = 0, double high = 1, Generator? generator = null, DType dtype = DType.Float32)
    {
        var t = Zeros(shape, dtype);
        t.FillUniform(low, high, generator);
        return t;
    }

    /// <summary>0, 1, …, n-1.</summary>
    public static Tensor Arange(int n, DType dtype = DType.Float32)
    {
        var t = Zeros([n], dtype);
        for (int i = 0; i < n; i++) t.SetFlat(i, i);
        return t;
    }

    // ---- in-place helpers (no autograd; used by initialisers, optimizers and loaders) ----------

    /// <summary>Sets every element to <paramref name="value"/>. Not recorded by autograd.</summary>
    public Tensor Fill(double value)
    {
        if (DType == DType.Float32) AsSpan().Fill((float)value); else AsDoubleSpan().Fill(value);
        return this;
    }

    /// <summary>Refills with N(mean, std²) values. Not recorded by autograd.</summary>
    public Tensor FillNormal(double mean, double std, Generator? generator = null)
    {
        var g = generator ?? Generator.Default;
        for (int i = 0; i < Length; i++) SetFlat(i, mean + std * g.NextNormal());
        return this;
    }

    /// <summary>Refills with values uniform in [low, high). Not recorded by autograd.</summary>
    public Tensor FillUniform(double low, double high, Generator? generator = null)
    {
        var g = generator ?? Generator.Default;
        for (int i = 0; i < Length; i++) SetFlat(i, low + (high - low) * g.NextDouble());
        return this;
    }

    /// <summary>Copies the values of a tensor with the same number of elements into this one. Not recorded by autograd.</summary>
    public void CopyFrom(Tensor source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!source.Shape.SequenceEqual(Shape)) throw ShapeMismatchException.For("CopyFrom", "the shapes differ", source.Shape, Shape);
        if (DType == source.DType)
        {
            if (DType == DType.Float32) source.AsSpan().CopyTo(AsSpan()); else source.AsDoubleSpan().CopyTo(AsDoubleSpan());
        }
        else if (DType == DType.Float32)
        {
            var src = source.AsDoubleSpan(); var dst = AsSpan();
            for (int i = 0; i < dst.Length; i++) dst[i] = (float)src[i];
        }
        else
        {
            var src = source.AsSpan(); var dst = AsDoubleSpan();
            for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
        }
    }

    internal double GetFlat(int i) => DType == DType.Float32 ? ((float[])StorageOrThrow)[_offset + i] : ((double[])StorageOrThrow)[_offset + i];

    internal void SetFlat(int i, double v)
    {
        if (DType == DType.Float32) ((float[])StorageOrThrow)[_offset + i] = (float)v;
        else ((double[])StorageOrThrow)[_offset + i] = v;
    }

    // ---- views and copies ------------------------------------------------------------------------

    /// <summary>
    /// The same elements under another shape; one dimension may be -1 and is then inferred. Shares storage.
    /// </summary>
    public Tensor Reshape(params ReadOnlySpan<int> shape)
    {
        var target = InferShape(shape);
        var view = Create(StorageOrThrow, _offset, target);
        return GradRecorder.Record(view, "reshape", [this], _shape, static (sourceShape, g, grads) => grads[0] = g.Detach().Reshape(sourceShape));
    }

    /// <summary>Elements [start, start+length) along dimension 0. Shares storage.</summary>
    public Tensor Narrow(int start, int length)
    {
        if (Rank == 0) throw new InvalidOperationException("Narrow needs a tensor of rank at least 1.");
        if (start < 0 || length < 0 || start + length > _shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows [{start}, {start + length}) are outside dimension 0 of shape {ShapeText.Format(_shape)}.");
        int row = Length / Math.Max(1, _shape[0]);
        Span<int> shape = stackalloc int[Rank];
        _shape.CopyTo(shape);
        shape[0] = length;
        var view = Create(StorageOrThrow, _offset + start * row, ShapeCache.Intern(shape));
        return GradRecorder.Record(view, "narrow", [this], (_shape, start, length), static (s, g, grads) =>
        {
            var full = Zeros(s.Item1, g.DType);
            full.Narrow(s.start, s.length).CopyFrom(g);
            grads[0] = full;
        });
    }

    /// <summary>A tensor sharing this one's storage, cut out of the autograd graph.</summary>
    public Tensor Detach() => Create(StorageOrThrow, _offset, _shape);

    /// <summary>A copy with its own storage; gradients flow back to this tensor.</summary>
    public Tensor Clone()
    {
        var copy = ZerosLike(this);
        copy.CopyFrom(this);
        return GradRecorder.Record(copy, "clone", [this], g => [g]);
    }

    /// <summary>The same values in another dtype (a copy unless the dtype already matches).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var copy = Zeros(_shape, dtype);
        copy.CopyFrom(this);
        var back = DType;
        return GradRecorder.Record(copy, "to", [this], g => [g.Detach().To(back)]);
    }

    /// <summary>Computes gradients of this tensor with respect to every leaf that requires grad.</summary>
    /// <param name="gradient">The upstream gradient; may be omitted for a one-element tensor (it is then 1).</param>
    public void Backward(Tensor? gradient = null) => BackwardEngine.Run(this, gradient);

    /// <inheritdoc />
    public override string ToString()
    {
        var text = $"Tensor({ShapeText.Format(_shape)}, {DType}";
        if (Length <= 8)
        {
            var values = new string[Length];
            for (int i = 0; i < Length; i++) values[i] = GetFlat(i).ToString("G6", CultureInfo.InvariantCulture);
            text += ", [" + string.Join(", ", values) + "]";
        }
        return text + (RequiresGrad ? ", requires grad)" : ")");
    }

    // ---- shape helpers ---------------------------------------------------------------------------

    internal static int Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {ShapeText.Format(shape)} has {n} elements, more than one array can hold.");
        return (int)n;
    }

    /// <summary>Checks a shape and returns the shared array holding it (<see cref="ShapeCache"/>).</summary>
    private static int[] CheckShape(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return CheckShape((ReadOnlySpan<int>)shape);
    }

    private static int[] CheckShape(ReadOnlySpan<int> shape)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {ShapeText.Format(shape)} has a negative dimension.");
        return ShapeCache.Intern(shape);
    }

    private int[] InferShape(ReadOnlySpan<int> shape)
    {
        Span<int> result = shape.Length <= 16 ? stackalloc int[shape.Length] : new int[shape.Length];
        shape.CopyTo(result);
        int infer = -1;
        long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (infer >= 0) throw new ShapeMismatchException($"Reshape: only one dimension may be -1 in {ShapeText.Format(shape)}.");
                infer = i;
            }
            else if (result[i] < 0) throw new ShapeMismatchException($"Reshape: invalid dimension in {ShapeText.Format(shape)}.");
            else known *= result[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Length % known != 0) throw ShapeMismatchException.For("Reshape", "cannot infer -1 reshaping", _shape, shape);
            result[infer] = (int)(Length / known);
        }
        if (Numel(result) != Length) throw ShapeMismatchException.For("Reshape", "element counts differ", _shape, result);
        return ShapeCache.Intern(result);
    }

    internal static int NormalizeDim(int dim, int rank)
    {
        int d = dim < 0 ? dim + rank : dim;
        if ((uint)d >= (uint)Math.Max(rank, 1)) throw new ArgumentOutOfRangeException(nameof(dim), $"Dimension {dim} is out of range for a tensor of rank {rank}.");
        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Cast<T>(double value) where T : INumberBase<T> => T.CreateTruncating(value);
}
