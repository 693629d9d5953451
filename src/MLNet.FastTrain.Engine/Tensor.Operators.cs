namespace MLNet.FastTrain.Engine;

public partial class Tensor
{
    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Functional.Add(a, b);

    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Functional.Sub(a, b);

    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Functional.Mul(a, b);

    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Functional.Div(a, b);

    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(Tensor a, double s) => Functional.AddScalar(a, s);

    /// <summary>Subtracts a scalar.</summary>
    public static Tensor operator -(Tensor a, double s) => Functional.AddScalar(a, -s);

    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(Tensor a, double s) => Functional.MulScalar(a, s);

    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(double s, Tensor a) => Functional.MulScalar(a, s);

    /// <summary>Divides by a scalar.</summary>
    public static Tensor operator /(Tensor a, double s) => Functional.MulScalar(a, 1.0 / s);

    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => Functional.Neg(a);

    /// <summary>Named alternative to <c>+</c>.</summary>
    public Tensor Add(Tensor other) => Functional.Add(this, other);

    /// <summary>Named alternative to <c>-</c>.</summary>
    public Tensor Subtract(Tensor other) => Functional.Sub(this, other);

    /// <summary>Named alternative to <c>*</c>.</summary>
    public Tensor Multiply(Tensor other) => Functional.Mul(this, other);

    /// <summary>Named alternative to <c>/</c>.</summary>
    public Tensor Divide(Tensor other) => Functional.Div(this, other);

    /// <summary>Named alternative to unary <c>-</c>.</summary>
    public Tensor Negate() => Functional.Neg(this);

    /// <summary>The sum of all elements.</summary>
    public Tensor Sum() => Functional.Sum(this);

    /// <summary>The sum along one dimension.</summary>
    public Tensor Sum(int dim, bool keepDim = false) => Functional.Sum(this, dim, keepDim);

    /// <summary>The mean of all elements.</summary>
    public Tensor Mean() => Functional.Mean(this);

    /// <summary>The mean along one dimension.</summary>
    public Tensor Mean(int dim, bool keepDim = false) => Functional.Mean(this, dim, keepDim);

    /// <summary>The index of the largest value along a dimension, per position of the other dimensions.</summary>
    public int[] Argmax(int dim = -1) => Functional.Argmax(this, dim);
}
