#pragma once
#include <string>

// The library builds with -fvisibility=hidden: whole classes are made visible, so their typeinfo
// and vtable are too (other programs dynamic_cast to them); shapes.exports lists what is exported.
#if defined(__GNUC__)
#define SHAPES_API __attribute__((visibility("default")))
#else
#define SHAPES_API
#endif

namespace shapes {
class SHAPES_API Shape {
public:
    virtual ~Shape();
    virtual double area() const = 0;
    virtual std::string name() const;
};

class SHAPES_API Circle : public Shape {
public:
    explicit Circle(double r);
    double area() const override;
    std::string name() const override;
private:
    double radius_;
};

SHAPES_API Shape *make_circle(double r);
}
