#pragma once
#include <string>

namespace shapes {
class Shape {
public:
    virtual ~Shape();
    virtual double area() const = 0;
    virtual std::string name() const;
};

class Circle : public Shape {
public:
    explicit Circle(double r);
    double area() const override;
    std::string name() const override;
private:
    double radius_;
};

Shape *make_circle(double r);
}
